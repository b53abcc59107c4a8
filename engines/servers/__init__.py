"""Database servers of our own, started from the machine's server binaries: the tests'
throwaway PostgreSQL and Redis, and the demo platform's (engines/demo)."""
