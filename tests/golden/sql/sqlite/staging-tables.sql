CREATE TABLE attribution_staged_runs (
	run_key TEXT NOT NULL, 
	batches INTEGER NOT NULL, 
	conversions INTEGER NOT NULL, 
	journeys INTEGER NOT NULL, 
	sessions INTEGER NOT NULL, 
	without_sessions INTEGER NOT NULL, 
	skipped INTEGER NOT NULL, 
	redo_days INTEGER, 
	PRIMARY KEY (run_key)
);

CREATE TABLE attribution_staged_journeys (
	run_key TEXT NOT NULL, 
	batch_id INTEGER NOT NULL, 
	conv_id TEXT NOT NULL, 
	session_id TEXT NOT NULL, 
	conv_ts TEXT, 
	revenue REAL, 
	timestamp TEXT, 
	channel_name TEXT, 
	holder_engagement INTEGER, 
	closer_engagement INTEGER, 
	impression_interaction INTEGER, 
	conversion INTEGER, 
	PRIMARY KEY (run_key, batch_id, conv_id, session_id)
);

CREATE TABLE attribution_staged_credits (
	run_key TEXT NOT NULL, 
	batch_id INTEGER NOT NULL, 
	conv_id TEXT NOT NULL, 
	session_id TEXT NOT NULL, 
	ihc REAL NOT NULL, 
	model TEXT, 
	conv_type_id TEXT, 
	initializer REAL, 
	holder REAL, 
	closer REAL, 
	event_date TEXT, 
	channel_name TEXT, 
	PRIMARY KEY (run_key, batch_id, conv_id, session_id)
);

CREATE TABLE attribution_staged_left (
	run_key TEXT NOT NULL, 
	batch_id INTEGER NOT NULL, 
	conv_id TEXT NOT NULL, 
	PRIMARY KEY (run_key, batch_id, conv_id)
);

CREATE TABLE attribution_staged_inputs (
	run_key TEXT NOT NULL, 
	date TEXT NOT NULL, 
	sessions BIGINT NOT NULL, 
	cost_rows BIGINT NOT NULL, 
	cost_micros BIGINT NOT NULL, 
	conversions BIGINT NOT NULL, 
	revenue_micros BIGINT NOT NULL, 
	journey_sessions BIGINT NOT NULL, 
	last_session TEXT, 
	last_journey_session TEXT, 
	PRIMARY KEY (run_key, date)
);
