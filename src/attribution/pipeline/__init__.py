"""The pipeline: one definition of the steps (``steps``) and two runners, in one process (``in_process``,
the CLI) or task by task with state in the warehouse (``scheduled``, a scheduler); settings, model setup,
training and comparison."""
