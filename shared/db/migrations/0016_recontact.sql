-- Issue 15, item 4: "don't message people we already messaged". The sender's load queries ask,
-- per execution and only while an organization's recontact_after_days is set, when another
-- execution last sent the contact a message: one backward probe of this index per contact.
CREATE INDEX messages_contact_sent_idx ON messages (contact_id, sent_at DESC)
    WHERE direction = 'outgoing' AND sent_at IS NOT NULL;
