-- OAuth 2.0 clients and access tokens. Secrets and tokens are stored only as
-- hex SHA-256 digests.

CREATE TABLE oauth_clients (
    id          VARCHAR(64)  PRIMARY KEY,
    name        VARCHAR(255) NOT NULL,
    secret_hash CHAR(64)     NOT NULL,
    scopes      VARCHAR(255) NOT NULL,
    created_at  TIMESTAMPTZ  NOT NULL
);

CREATE TABLE oauth_tokens (
    token_hash CHAR(64)     PRIMARY KEY,
    client_id  VARCHAR(64)  NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scopes     VARCHAR(255) NOT NULL,
    issued_at  TIMESTAMPTZ  NOT NULL,
    expires_at TIMESTAMPTZ  NOT NULL
);
CREATE INDEX oauth_tokens_client_id_idx ON oauth_tokens (client_id);
CREATE INDEX oauth_tokens_expires_at_idx ON oauth_tokens (expires_at);
