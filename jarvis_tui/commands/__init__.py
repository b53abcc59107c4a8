"""CLI subcommands; each module registers its commands and presents their results."""
