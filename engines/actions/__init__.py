"""The verbs, one module each (borgmatic's `actions/<verb>.py`). `verbs.VERBS` is the one
table the CLI, the console's job process and the scheduler read."""
