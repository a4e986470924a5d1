-- The flags each plan decided with (a rollback stops what is already planned). The send
-- step re-decides every planned row when it claims it; to tell a Launchpad override made for
-- that plan (honoured) from a later change to flags.yaml (which wins), it needs both.
-- JSON: {flag_key: {"committed": {"state": …, "percent": …}, "effective": {…}}}.
alter table messaging.plans add column if not exists flag_settings json;
