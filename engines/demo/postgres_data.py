"""The demo's PostgreSQL data: Jarvis's users, their conversations with the assistant and
the tracks it generated. Fixed, so every demo holds the same rows."""

from psycopg import sql

from engines.servers.postgres import PostgresServer

DATABASE = "jarvis_db"
USER = "jarvis_user"
# Table: rows seeded (what a restore of the demo is compared with).
TABLE_ROWS = {"users": 120, "conversations": 360, "messages": 2160, "tracks": 240}

SCHEMA_SQL = """
CREATE TABLE users (
    id serial PRIMARY KEY,
    email text UNIQUE NOT NULL,
    display_name text NOT NULL,
    plan text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'studio')),
    preferences jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL
);
CREATE TABLE conversations (
    id bigserial PRIMARY KEY,
    user_id int NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE messages (
    id bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('user', 'assistant')),
    content text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, created_at);
CREATE TABLE tracks (
    id serial PRIMARY KEY,
    user_id int NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title text NOT NULL,
    genre text NOT NULL,
    duration_seconds int NOT NULL CHECK (duration_seconds > 0),
    prompt text NOT NULL,
    audio_path text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE VIEW tracks_per_genre AS SELECT genre, count(*) AS tracks FROM tracks GROUP BY genre;
COMMENT ON TABLE tracks IS 'Music generated for users; audio under generated-music/';
"""

DATA_SQL = """
INSERT INTO users (email, display_name, plan, preferences, created_at)
SELECT 'user' || g || '@jarvis.example',
       (ARRAY['Ada', 'Zoë', 'Jürgen', 'Mei', 'Ørsted', 'Amara', 'Luis', 'Yuki'])[1 + g % 8]
           || ' ' || (ARRAY['Lovelace', 'Brontë', 'Nakamura', 'Okafor', 'García'])[1 + g % 5],
       (ARRAY['free', 'free', 'pro', 'studio'])[1 + g % 4],
       jsonb_build_object('voice', (ARRAY['warm', 'bright', 'calm'])[1 + g % 3],
                          'language', (ARRAY['en', 'de', 'ja', 'es'])[1 + g % 4]),
       timestamptz '2026-01-01 08:00:00+00' + g * interval '7 hours'
FROM generate_series(1, {users}) AS g;

INSERT INTO conversations (user_id, title, created_at)
SELECT 1 + g % {users},
       (ARRAY['Morning briefing', 'Plan a trip to Kyoto', 'Lyrics for a lullaby',
              'Summarise my inbox', 'Workout playlist', 'Café recommendations'])[1 + g % 6],
       timestamptz '2026-02-01 09:00:00+00' + g * interval '3 hours'
FROM generate_series(1, {conversations}) AS g;

INSERT INTO messages (conversation_id, role, content, created_at)
SELECT 1 + (g - 1) / 6,
       CASE WHEN g % 2 = 1 THEN 'user' ELSE 'assistant' END,
       CASE WHEN g % 2 = 1
            THEN (ARRAY['What is on today?', 'Make it more upbeat.', 'Translate that to German.',
                        'Play something calm.'])[1 + g % 4]
            ELSE (ARRAY['Here is your plan for the day.', 'Done — tempo raised to 128 bpm.',
                        'Natürlich: „Guten Morgen“.', 'Queued three ambient tracks.'])[1 + g % 4]
       END,
       timestamptz '2026-02-01 09:00:00+00' + g * interval '31 seconds'
FROM generate_series(1, {messages}) AS g;

INSERT INTO tracks (user_id, title, genre, duration_seconds, prompt, audio_path, created_at)
SELECT 1 + g % {users},
       (ARRAY['Neon', 'Quiet', 'Golden', 'Midnight'])[1 + g % 4] || ' '
           || (ARRAY['Rain', 'Drive', 'Garden', 'Signal', 'Tide'])[1 + g % 5] || ' ' || g,
       (ARRAY['ambient', 'lo-fi', 'synthwave', 'jazz', 'classical'])[1 + g % 5],
       90 + (g * 37) % 180,
       'a ' || (ARRAY['gentle', 'driving', 'dreamy'])[1 + g % 3] || ' piece for ' ||
           (ARRAY['studying', 'running', 'sleeping'])[1 + g % 3],
       'generated-music/track-' || lpad(g::text, 4, '0') || '.mp3',
       timestamptz '2026-03-01 12:00:00+00' + g * interval '5 hours'
FROM generate_series(1, {tracks}) AS g;
"""


def seed_postgres(server: PostgresServer) -> None:
    """The application's role and database, owned by the role as Jarvis's own would be."""
    role, database = sql.Identifier(USER), sql.Identifier(DATABASE)
    # A superuser of the throwaway cluster, so that every restore option works on it.
    server.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(role))
    server.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
    script = f"SET ROLE {USER};\n{SCHEMA_SQL}\n{DATA_SQL.format(**TABLE_ROWS)}"
    server.execute(script, dbname=DATABASE)
