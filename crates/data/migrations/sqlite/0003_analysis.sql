-- Post-call analysis settings per agent version (JSON object: success, schema, provider, …;
-- `{}` = the defaults). Keep in step with the other backend's 0003_analysis.sql.
ALTER TABLE agent_versions ADD COLUMN analysis TEXT NOT NULL DEFAULT '{}';
