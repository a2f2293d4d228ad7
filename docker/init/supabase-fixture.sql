-- supabase-fixture.sql: a Supabase-like cluster for the pmoves-secrets integration tests.
--
-- Usage (as the cluster's bootstrap superuser `supabase_admin`, connected to database `postgres`):
--
--   psql -X -v ON_ERROR_STOP=1 -v pgpass=SECRET [-v maindb=postgres] [-v layout=current] \
--        -h HOST -p PORT -U supabase_admin -d postgres -f docker/init/supabase-fixture.sql
--
--   pgpass  (required) the shared POSTGRES_PASSWORD given to every Supabase LOGIN role.
--   maindb  (default `postgres`) the stack's main database (PMOVES uses `pmoves`); created if missing.
--   layout  (default `current`)
--             current: database `_supabase` holds schemas `_analytics` and `_supavisor` (current
--                      supabase/docker: volumes/db/_supabase.sql, logs.sql, pooler.sql).
--             legacy:  no `_supabase` database; `_analytics` and `_supavisor` live in the main
--                      database (older stacks, before `_supabase` existed).
--             bare:    neither `_supabase` nor `_analytics` / `_supavisor` anywhere.
--
-- The test harness (tests/it/common/pg/) runs this file once per template cluster, then drops
-- optional roles (e.g. `pgbouncer`) with REASSIGN OWNED / DROP OWNED / DROP ROLE.
--
-- ---------------------------------------------------------------------------------------------
-- Upstream facts this fixture mirrors (checked in supabase/postgres migrations/db, supabase/supabase
-- docker/volumes/db + docker/utils/db-passwd.sh, Logflare and Supavisor Ecto migrations). Our own SQL.
--
-- * Bootstrap superuser: the supabase/postgres image sets POSTGRES_USER=supabase_admin, so initdb
--   runs with --username=supabase_admin. `supabase_admin` is the cluster's bootstrap superuser
--   (oid 10): SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS LOGIN. We do the same.
-- * `postgres` is created by the image's migrate.sh as `superuser login password ...`, owner of
--   database `postgres`, then demoted by migration 10000000000000_demote-postgres.sql to
--   NOSUPERUSER CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS. Later migrations grant it
--   anon, authenticated, service_role, supabase_auth_admin, supabase_storage_admin.
-- * anon, authenticated: NOLOGIN (created NOINHERIT, switched to INHERIT by migration
--   20230529180330_alter_api_roles_for_inherit.sql). service_role: NOLOGIN BYPASSRLS (INHERIT
--   likewise). None of the three has a password upstream.
-- * authenticator: LOGIN NOINHERIT, member of anon, authenticated, service_role (the grant of
--   supabase_admin to it was revoked by 20221103090837_revoke_admin.sql);
--   `statement_timeout = '8s'` is set on it.
-- * dashboard_user: NOSUPERUSER CREATEDB CREATEROLE REPLICATION, and NOLOGIN (plain CREATE ROLE).
-- * pgbouncer: `CREATE USER pgbouncer` (LOGIN), owns schema `pgbouncer` with function
--   pgbouncer.get_auth(text) (ansible/files/pgbouncer_config/pgbouncer_auth_schema.sql).
-- * supabase_auth_admin, supabase_storage_admin, supabase_functions_admin:
--   NOINHERIT CREATEROLE LOGIN NOREPLICATION.
-- * supabase_replication_admin: LOGIN REPLICATION.
-- * supabase_read_only_user: LOGIN BYPASSRLS, member of pg_read_all_data. supabase/docker's
--   roles.sql and db-passwd.sh never give it a password ("this role is not supposed to have a
--   password"); the image's all-in-one variant does, the docker stack does not. Here: no password.
-- * Passwords set by supabase/docker roles.sql (all to POSTGRES_PASSWORD): supabase_admin,
--   authenticator, pgbouncer, supabase_auth_admin, supabase_storage_admin; the image sets
--   postgres (migrate.sh) and supabase_replication_admin. db-passwd.sh later sets one password on
--   all 12 of: anon authenticated authenticator dashboard_user pgbouncer postgres service_role
--   supabase_admin supabase_auth_admin supabase_functions_admin supabase_replication_admin
--   supabase_storage_admin. Here every Supabase LOGIN role gets :'pgpass', NOLOGIN roles none.
-- * `_supabase` database: created `WITH OWNER` POSTGRES_USER (= supabase_admin); `_analytics`
--   (logs.sql) and `_supavisor` (pooler.sql) are created inside it and owned by POSTGRES_USER.
-- * Logflare's `source_backends` (Ecto migration CreateSourceBackendsTable): id bigserial PK,
--   source_id bigint -> sources, type varchar(255) (nullable), config jsonb (Ecto :map),
--   inserted_at / updated_at timestamp(0) NOT NULL. There is NO `url` column: the Postgres
--   backend's connection string is the `url` key of `config` (with `schema` beside it).
--   db-passwd.sh rewrites it with jsonb_set(config, '{url}', ...) WHERE type = 'postgres'.
--   Newer Logflare versions moved backends to a separate `backends` table (later with an encrypted
--   `config_encrypted` bytea): not modelled here.
-- * Supavisor's tables (Ecto, prefix `_supavisor`): tenants (id uuid, external_id unique,
--   db_host, db_port, db_database, ...), users (db_user, db_pass_encrypted bytea, ...,
--   tenant_external_id -> tenants.external_id). Passwords there are encrypted with VAULT_ENC_KEY,
--   which is why rotation drops the schema and lets supavisor re-seed it.
-- ---------------------------------------------------------------------------------------------

\set ON_ERROR_STOP on
\set QUIET on

\if :{?pgpass}
\else
  DO $$ BEGIN RAISE EXCEPTION 'supabase-fixture.sql: psql -v pgpass=... is required'; END $$;
\endif
\if :{?maindb}
\else
  \set maindb postgres
\endif
\if :{?layout}
\else
  \set layout current
\endif

SELECT :'layout' IN ('current', 'legacy', 'bare') AS fx_layout_ok,
       :'layout' = 'current' AS fx_current,
       :'layout' = 'legacy' AS fx_legacy,
       :'layout' = 'bare' AS fx_bare,
       current_user = 'supabase_admin' AND rolsuper AS fx_admin_ok,
       :'maindb' = 'postgres' AS fx_maindb_is_postgres,
       regexp_replace(upper(encode(convert_to(:'pgpass', 'UTF8'), 'hex')), '(..)', '%\1', 'g')
         AS fx_pgpass_pct
  FROM pg_roles WHERE rolname = current_user
\gset

\if :fx_layout_ok
\else
  DO $$ BEGIN RAISE EXCEPTION 'supabase-fixture.sql: layout must be current, legacy or bare'; END $$;
\endif
\if :fx_admin_ok
\else
  DO $$ BEGIN RAISE EXCEPTION 'supabase-fixture.sql: run it as the superuser supabase_admin'; END $$;
\endif

-- ============================================================================ roles (cluster-wide)

-- supabase_admin's password is set at the very end: psql's \connect below reuses the password
-- this session logged in with.
ALTER ROLE supabase_admin WITH SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS LOGIN;

CREATE ROLE postgres WITH NOSUPERUSER CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS
  PASSWORD :'pgpass';

CREATE ROLE anon WITH NOLOGIN INHERIT;
CREATE ROLE authenticated WITH NOLOGIN INHERIT;
CREATE ROLE service_role WITH NOLOGIN INHERIT BYPASSRLS;

CREATE ROLE authenticator WITH LOGIN NOINHERIT PASSWORD :'pgpass';
GRANT anon, authenticated, service_role TO authenticator;
ALTER ROLE authenticator SET statement_timeout = '8s';
ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';

CREATE ROLE dashboard_user WITH NOSUPERUSER CREATEDB CREATEROLE REPLICATION NOLOGIN;

CREATE ROLE pgbouncer WITH LOGIN PASSWORD :'pgpass';

CREATE ROLE supabase_auth_admin WITH LOGIN NOINHERIT CREATEROLE NOREPLICATION PASSWORD :'pgpass';
CREATE ROLE supabase_storage_admin WITH LOGIN NOINHERIT CREATEROLE NOREPLICATION PASSWORD :'pgpass';
CREATE ROLE supabase_functions_admin WITH LOGIN NOINHERIT CREATEROLE NOREPLICATION PASSWORD :'pgpass';
CREATE ROLE supabase_replication_admin WITH LOGIN REPLICATION PASSWORD :'pgpass';

CREATE ROLE supabase_read_only_user WITH LOGIN BYPASSRLS;
GRANT pg_read_all_data TO supabase_read_only_user;

GRANT anon, authenticated, service_role TO postgres;
GRANT supabase_auth_admin, supabase_storage_admin TO postgres;
GRANT anon, authenticated, service_role, authenticator TO supabase_storage_admin;

-- An application role of the operator's own: rotation must never touch it.
CREATE ROLE app_user WITH LOGIN PASSWORD 'app-user-password';

-- ============================================================================ main database

SELECT format('CREATE DATABASE %I WITH OWNER supabase_admin', :'maindb')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'maindb')
\gexec
\if :fx_maindb_is_postgres
  ALTER DATABASE postgres OWNER TO postgres;
\endif
GRANT ALL ON DATABASE :"maindb" TO postgres, dashboard_user;

\connect :"maindb"
\set QUIET on

CREATE SCHEMA IF NOT EXISTS extensions;
GRANT USAGE ON SCHEMA extensions TO postgres, anon, authenticated, service_role;

CREATE SCHEMA IF NOT EXISTS auth AUTHORIZATION supabase_admin;
CREATE TABLE auth.users (
    instance_id uuid,
    id uuid PRIMARY KEY,
    role varchar(255),
    email varchar(255),
    encrypted_password varchar(255),
    created_at timestamptz DEFAULT now()
);
ALTER TABLE auth.users OWNER TO supabase_auth_admin;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT ALL ON SCHEMA auth TO supabase_auth_admin, postgres, dashboard_user;
INSERT INTO auth.users (id, role, email, encrypted_password)
VALUES ('00000000-0000-4000-8000-000000000001', 'authenticated', 'someone@example.com',
        '$2a$10$abcdefghijklmnopqrstuuN7.9Yk0d1cOcE3e0ZyK3mQvQ8m6m5W6');

CREATE SCHEMA IF NOT EXISTS storage AUTHORIZATION supabase_admin;
CREATE TABLE storage.buckets (
    id text PRIMARY KEY,
    name text NOT NULL,
    owner uuid REFERENCES auth.users (id),
    created_at timestamptz DEFAULT now()
);
ALTER TABLE storage.buckets OWNER TO supabase_storage_admin;
GRANT USAGE ON SCHEMA storage TO postgres, anon, authenticated, service_role;
GRANT ALL ON SCHEMA storage TO supabase_storage_admin, postgres, dashboard_user;

CREATE SCHEMA pgbouncer AUTHORIZATION pgbouncer;
CREATE FUNCTION pgbouncer.get_auth(p_usename text)
RETURNS TABLE (username text, password text)
LANGUAGE sql SECURITY DEFINER
AS $fx$
    SELECT usename::text, passwd::text FROM pg_catalog.pg_shadow WHERE usename = p_usename;
$fx$;
REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO pgbouncer;

-- The operator's own application data.
CREATE TABLE public.app_notes (id bigserial PRIMARY KEY, body text NOT NULL);
ALTER TABLE public.app_notes OWNER TO app_user;
INSERT INTO public.app_notes (body) VALUES ('not a Supabase table');

-- ============================================================================ _analytics / _supavisor

\if :fx_current
  CREATE DATABASE _supabase WITH OWNER supabase_admin;
  \connect _supabase
  \set QUIET on
\endif

\if :fx_bare
\else
CREATE SCHEMA _analytics AUTHORIZATION supabase_admin;

CREATE TABLE _analytics.sources (
    id bigserial PRIMARY KEY,
    name varchar(255),
    token uuid NOT NULL DEFAULT gen_random_uuid(),
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT now(),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT now()
);

CREATE TABLE _analytics.source_backends (
    id bigserial PRIMARY KEY,
    source_id bigint REFERENCES _analytics.sources (id),
    type varchar(255),
    config jsonb,
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT now(),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT now()
);

INSERT INTO _analytics.sources (id, name) VALUES
    (1, 'postgres.logs'),
    (2, 'realtime.logs.prod'),
    (3, 'cloudflare.logs.prod');
ALTER SEQUENCE _analytics.sources_id_seq RESTART WITH 4;

-- id 1: plain URL, the shape db-passwd.sh writes.
-- id 2: `postgres://` scheme, every password byte percent-encoded, other host/database and a
--       query string: only the password component may change.
-- id 3: not a Postgres backend: must stay byte-for-byte untouched.
INSERT INTO _analytics.source_backends (id, source_id, type, config) VALUES
    (1, 1, 'postgres', jsonb_build_object(
        'url', 'postgresql://supabase_admin:' || :'pgpass' || '@db:5432/postgres',
        'schema', '_analytics')),
    (2, 2, 'postgres', jsonb_build_object(
        'url', 'postgres://supabase_admin:' || :'fx_pgpass_pct'
               || '@supabase-db:5432/_supabase?sslmode=disable',
        'schema', '_analytics')),
    (3, 3, 'bigquery', jsonb_build_object(
        'project_id', 'pmoves-logs',
        'dataset_id', 'analytics'));
ALTER SEQUENCE _analytics.source_backends_id_seq RESTART WITH 4;

CREATE SCHEMA _supavisor AUTHORIZATION supabase_admin;

CREATE TABLE _supavisor.schema_migrations (
    version bigint PRIMARY KEY,
    inserted_at timestamp(0) without time zone
);
INSERT INTO _supavisor.schema_migrations VALUES (20230125140723, now()), (20240822132419, now());

CREATE TABLE _supavisor.tenants (
    id uuid PRIMARY KEY,
    external_id varchar(255) NOT NULL UNIQUE,
    db_host varchar(255) NOT NULL,
    db_port integer NOT NULL,
    db_database varchar(255) NOT NULL,
    require_user boolean NOT NULL DEFAULT false,
    auth_query text,
    default_pool_size integer NOT NULL DEFAULT 15,
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT now(),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT now()
);

CREATE TABLE _supavisor.users (
    id uuid PRIMARY KEY,
    db_user_alias varchar(255) NOT NULL,
    db_user varchar(255) NOT NULL,
    db_pass_encrypted bytea NOT NULL,
    is_manager boolean NOT NULL DEFAULT false,
    mode_type varchar(255) NOT NULL DEFAULT 'transaction',
    pool_size integer NOT NULL DEFAULT 15,
    tenant_external_id varchar(255) NOT NULL
        REFERENCES _supavisor.tenants (external_id) ON DELETE CASCADE,
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT now(),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT now()
);

INSERT INTO _supavisor.tenants (id, external_id, db_host, db_port, db_database, require_user)
VALUES ('00000000-0000-4000-8000-00000000000a', 'pmoves', 'db', 5432, :'maindb', false);

-- No row in _supavisor.users: upstream's pooler.exs writes it (user pgbouncer, POSTGRES_PASSWORD
-- encrypted by Supavisor's Cloak vault under VAULT_ENC_KEY) when the tenant is created, and the
-- key is the test's own; tests that need the row write it with another implementation
-- (tests/it/common/copies.rs, Python `cryptography`).

-- Logflare's single-tenant user and access tokens (Logflare/logflare migrations
-- 20181212161742_add_users_table, 20181219123536_add_api_key_to_users, 20191007163747_add_provider_uid,
-- 20190211215002_create_oauth_tables, 20220523135557_add_description_column...): the columns
-- the tool reads, the types Ecto gives them. Empty here: Logflare fills them at its first start.
CREATE TABLE _analytics.users (
    id bigserial PRIMARY KEY,
    email varchar(255),
    provider varchar(255) NOT NULL,
    token varchar(255),
    api_key varchar(255) NOT NULL,
    provider_uid varchar(255),
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT now(),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT now()
);
CREATE INDEX users_api_key_index ON _analytics.users (api_key);

CREATE TABLE _analytics.oauth_access_tokens (
    id bigserial PRIMARY KEY,
    application_id bigint,
    resource_owner_id integer,
    token varchar(255) NOT NULL UNIQUE,
    refresh_token varchar(255) UNIQUE,
    expires_in integer,
    revoked_at timestamp(0) without time zone,
    scopes varchar(255),
    previous_refresh_token varchar(255) NOT NULL DEFAULT '',
    description text,
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT now(),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT now()
);
\endif

-- ============================================================================ _realtime (main database)

-- Realtime runs in POSTGRES_DB with search_path _realtime (upstream compose DB_NAME,
-- DB_AFTER_CONNECT_QUERY); supabase/supabase docker/volumes/db/realtime.sql creates the schema.
-- Tables as supabase/realtime's migrations leave them (20210706140551_create_tenant,
-- 20220329161857_add_extensions_table, 20230810220907/20230810220924 ..._columns_to_text,
-- 20240306114423_add_tenant_jwt_jwks, 20251204170944_nullable_jwt_secrets), with the columns the
-- tool reads. Empty here: Realtime seeds its tenant (SEED_SELF_HOST) at its first start.
\if :fx_bare
\else
\connect :"maindb"
\set QUIET on
CREATE SCHEMA _realtime AUTHORIZATION supabase_admin;
CREATE TABLE _realtime.tenants (
    id uuid PRIMARY KEY,
    name text,
    external_id text UNIQUE,
    jwt_secret text,
    jwt_jwks jsonb,
    max_concurrent_users integer DEFAULT 200,
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT now(),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT now(),
    CONSTRAINT jwt_secret_or_jwt_jwks_required CHECK (jwt_secret IS NOT NULL OR jwt_jwks IS NOT NULL)
);
CREATE TABLE _realtime.extensions (
    id uuid PRIMARY KEY,
    type text,
    settings jsonb,
    tenant_external_id text REFERENCES _realtime.tenants (external_id) ON DELETE CASCADE,
    inserted_at timestamp(0) without time zone NOT NULL DEFAULT now(),
    updated_at timestamp(0) without time zone NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX extensions_tenant_external_id_type_index ON _realtime.extensions (tenant_external_id, type);
\endif

-- ============================================================================ last: superuser password

ALTER ROLE supabase_admin WITH PASSWORD :'pgpass';
