"""The channel report and what is made of it: the report table, CPO and ROAS, the files, the dashboard, and
publishing them to a directory or an object store."""
