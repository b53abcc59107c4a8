"""The demo platform (`jarvis-tui demo`): a throwaway PostgreSQL and Redis from the
machine's server binaries, seeded with a small Jarvis-like data set, a folder of files, an
app `.env` and a config folder, and the console's settings for all of it, in one folder
that `jarvis-tui demo --stop` removes whole."""
