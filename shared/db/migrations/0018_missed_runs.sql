-- Issue 16: a scheduled or recurring run whose time passed while no scheduler ran is not started
-- late; the campaign records the time it missed, shown until a person runs it now or
-- reschedules it (docs/campaigns.md, "Launch types").
ALTER TABLE campaigns ADD COLUMN missed_run_at timestamptz;
