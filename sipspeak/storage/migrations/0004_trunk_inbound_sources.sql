-- The networks a trunk's provider delivers inbound calls from, when they are not the
-- addresses its host name resolves to: IP addresses and CIDR networks, comma-separated, as
-- the trunk form normalises them ('' = none beyond the host's own addresses).
ALTER TABLE trunks ADD COLUMN inbound_sources TEXT NOT NULL DEFAULT '';
