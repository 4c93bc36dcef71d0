"""WeChat mini-program login: an account's binding to a WeChat user (helper clients-login).

`account_wechat` is a platform table, like `accounts` and `auth_sessions`: `/auth/wechat`
reads it before any tenant scope exists, so it has no `tenant_id` and no row-level
security; the application reaches it only through service/auth (lookups by the digest,
the holder's own binding).

What is stored is not the openid but `openid_digest`: an SM3-HMAC of (app id, openid)
under a key derived from the field master key (service/crypto.py). A login only ever
needs "which account has this openid", an equality; the service never shows or sends an
openid back. Unkeyed, a digest of an openid could be matched against openids learnt
elsewhere (they are not secret to the mini-program's operator); keyed, a copy of the
database does not tell which WeChat user holds which account. The cost: losing the
field key loses the bindings (users bind again), as it loses the sealed numbers anyway.

One WeChat user binds one account (unique digest) and an account binds one WeChat user
(the account is the key); binding again replaces the account's binding.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import context, op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _app_role() -> str:
    role = context.config.attributes.get("app_role", "pingyi_app")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"bad application role name: {role!r}")
    return role


def upgrade() -> None:
    app = _app_role()
    op.execute(
        f"""
        CREATE TABLE account_wechat (
          account_id    bigint PRIMARY KEY REFERENCES accounts (id),
          app_id        text NOT NULL CHECK (app_id <> ''),
          openid_digest bytea NOT NULL CHECK (octet_length(openid_digest) = 32),
          bound_at      timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT account_wechat_openid_unique UNIQUE (openid_digest)
        );
        GRANT SELECT, INSERT, UPDATE, DELETE ON account_wechat TO {app};
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE account_wechat")
