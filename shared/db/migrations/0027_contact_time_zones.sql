-- A contact's own time zone (issue 16, item 3): an IANA name, given (over HTTP, a CSV import or
-- contact.upsert) and checked against the zone database by the API
-- (shared/domain/recipient_zones.py `valid_zone`). NULL when none was given: the zone a phone
-- number's country implies is computed where it is used, not stored (docs/campaigns.md), so it
-- follows an edited phone number and never passes for a zone someone gave.
ALTER TABLE contacts ADD COLUMN time_zone text CHECK (length(time_zone) BETWEEN 1 AND 64);
