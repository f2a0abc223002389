/**
 * The fleet schema, as numbered migrations applied in order inside one transaction each; applied
 * numbers are kept in fleet_migrations. Never edit a migration that has shipped: add the next one.
 *
 * Index choices (README's fleet section explains them with the measured figures):
 * - fleet_listeners (local_port, protocol): "which hosts expose tcp/23" is an equality on both.
 * - fleet_listeners (service, local_address) and (process, local_address): "who runs redis on 0.0.0.0".
 * - fleet_snapshots primary key (host_id, taken_at): a host's history is a range scan of one host; the
 *   same key makes a snapshot sent twice a no-op.
 * - fleet_events unique (host_id, key): idempotency of events; (host_id, at): a host's changes since a
 *   date; (at): fleet-wide changes since a date, then joined to the hosts of a group.
 */
export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'hosts, listeners, snapshots, events',
    sql: `
CREATE TABLE fleet_hosts (
  id bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  host_group text NOT NULL DEFAULT '',
  token_hash bytea NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen timestamptz,
  last_snapshot_at timestamptz,
  last_history_at timestamptz,
  method text,
  policy text,
  listeners integer NOT NULL DEFAULT 0,
  exposed integer NOT NULL DEFAULT 0,
  drift integer NOT NULL DEFAULT 0,
  open_findings integer NOT NULL DEFAULT 0,
  findings jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX fleet_hosts_group ON fleet_hosts (host_group);
CREATE TABLE fleet_listeners (
  host_id bigint NOT NULL REFERENCES fleet_hosts ON DELETE CASCADE,
  protocol text NOT NULL,
  local_address text NOT NULL,
  local_port integer NOT NULL,
  netns text NOT NULL,
  exposure text NOT NULL,
  service text,
  risk text,
  process text,
  pid integer,
  username text,
  unit text,
  container text,
  since timestamptz NOT NULL,
  PRIMARY KEY (host_id, protocol, local_address, local_port, netns)
);
CREATE INDEX fleet_listeners_port ON fleet_listeners (local_port, protocol);
CREATE INDEX fleet_listeners_service ON fleet_listeners (service, local_address);
CREATE INDEX fleet_listeners_process ON fleet_listeners (process, local_address);
CREATE TABLE fleet_snapshots (
  host_id bigint NOT NULL REFERENCES fleet_hosts ON DELETE CASCADE,
  taken_at timestamptz NOT NULL,
  key text NOT NULL,
  listeners integer NOT NULL,
  exposed integer NOT NULL,
  open_findings integer NOT NULL,
  PRIMARY KEY (host_id, taken_at)
);
CREATE TABLE fleet_events (
  id bigserial PRIMARY KEY,
  host_id bigint NOT NULL REFERENCES fleet_hosts ON DELETE CASCADE,
  key text NOT NULL,
  at timestamptz NOT NULL,
  kind text NOT NULL,
  listener_key text NOT NULL,
  message text NOT NULL,
  listener jsonb,
  UNIQUE (host_id, key)
);
CREATE INDEX fleet_events_host_at ON fleet_events (host_id, at);
CREATE INDEX fleet_events_at ON fleet_events (at);
`,
  },
  {
    version: 2,
    name: 'listeners: reachable through the firewall, apart from what they are bound to',
    sql: `
ALTER TABLE fleet_listeners ADD COLUMN reachable text NOT NULL DEFAULT 'unknown';
`,
  },
];
