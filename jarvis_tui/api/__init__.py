"""The REST API (`jarvis-tui serve`): a front end beside the CLI and the console.

FastAPI on uvicorn, driving the same verbs, jobs and catalog: reads come from the
catalog, every action starts the same job process the console starts. Never imports
textual.
"""
