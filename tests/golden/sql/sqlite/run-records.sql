CREATE TABLE attribution_runs (
	run_id TEXT NOT NULL, 
	started_at TEXT NOT NULL, 
	finished_at TEXT, 
	status TEXT NOT NULL, 
	model TEXT NOT NULL, 
	range_start TEXT, 
	range_end TEXT, 
	summary TEXT, 
	host TEXT, 
	pid INTEGER, 
	heartbeat_at TEXT, 
	lease_seconds INTEGER, 
	PRIMARY KEY (run_id)
);

ALTER TABLE attribution_runs ADD COLUMN heartbeat_at TEXT;

ALTER TABLE attribution_runs ADD COLUMN lease_seconds INTEGER;
