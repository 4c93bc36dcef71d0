"""`pingyi migrate` is idempotent and keeps the data of an existing database."""

from __future__ import annotations

import psycopg
import pytest
from alembic import command
from sqlalchemy.exc import DBAPIError

from service.config import Settings
from service.db import libpq_url
from service.migrate import alembic_config, head_revision, migrate
from tests.conftest import TestDatabase
from tests.support import World, scratch_database


def test_migrate_again_is_a_no_op_that_keeps_rows(
    world: World, database: TestDatabase, settings: Settings, owner_conn: psycopg.Connection
) -> None:
    before = owner_conn.execute("SELECT count(*) FROM org_units").fetchone()
    migrate(database.owner_url, settings)
    migrate(database.owner_url, settings)
    after = owner_conn.execute("SELECT count(*) FROM org_units").fetchone()
    assert before == after and before is not None and before[0] > 0
    version = owner_conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == (head_revision(),)


def test_upgrade_from_the_foundation_keeps_its_rows_and_scopes_the_ledger(
    database: TestDatabase, settings: Settings
) -> None:
    """A database the foundation migrated (revision 0002), with a tenant, a unit and an
    account in it, upgrades to head: the rows stay, the ledger's tables arrive empty,
    under forced row-level security, readable by the application role."""
    with scratch_database(database.owner_url, "pingyi_upgrade") as owner:
        command.upgrade(alembic_config(owner, settings.app_db_role), "0002")
        with psycopg.connect(libpq_url(owner), autocommit=True) as conn:
            conn.execute(
                """
                INSERT INTO tenants (id, parent_id, kind, code, path)
                  SELECT nextval('org_unit_id_seq'), id, 'county', 'old', '' FROM tenants
                  WHERE kind = 'platform';
                UPDATE tenants SET path = '/1/' || id || '/' WHERE code = 'old';
                """
            )
            county = conn.execute("SELECT id, path FROM tenants WHERE code = 'old'").fetchone()
            assert county is not None
            conn.execute(f"SET app.tenant_ids = '{int(county[0])}'")
            conn.execute(
                "INSERT INTO org_units (tenant_id, id, parent_tenant_id, parent_id, kind, code,"
                " name, path) VALUES (%s, %s, 1, 1, 'county', 'old', '旧县', %s)",
                (county[0], county[0], county[1]),
            )
            conn.execute(
                "INSERT INTO accounts (username, display_name, password_hash, home_tenant_id,"
                " home_org_unit_id) VALUES ('old.user', '旧用户', 'x', %s, %s)",
                (county[0], county[0]),
            )
        migrate(owner, settings)
        with psycopg.connect(libpq_url(owner), autocommit=True) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
                head_revision(),
            )
            conn.execute(f"SET app.tenant_ids = '{int(county[0])}'")
            assert conn.execute("SELECT name FROM org_units WHERE code = 'old'").fetchone() == (
                "旧县",
            )
            assert conn.execute(
                "SELECT count(*) FROM accounts WHERE username = 'old.user'"
            ).fetchone() == (1,)
            forced = conn.execute(
                "SELECT relname FROM pg_class WHERE relname = ANY(%s)"
                " AND relrowsecurity AND relforcerowsecurity",
                (["members", "dues_months", "meeting_attendance", "member_imports"],),
            ).fetchall()
            assert len(forced) == 4
            assert conn.execute("SELECT count(*) FROM members").fetchone() == (0,)


def test_0018_moves_closed_rounds_counts_into_their_entries_only(
    database: TestDatabase, settings: Settings
) -> None:
    """0018: the counters of a closed round go (its entries hold the same counts); an
    open round keeps its counters. A closed round whose entries disagree with its
    counters stops the upgrade with nothing changed. The downgrade puts the counters
    and the shares back."""
    counters = "SELECT round_id, position, excellent, qualified, basic, unqualified"
    counters += " FROM evaluation_counts ORDER BY 1, 2"
    with scratch_database(database.owner_url, "pingyi_upgrade") as owner:
        config = alembic_config(owner, settings.app_db_role)
        command.upgrade(config, "0017")
        with psycopg.connect(libpq_url(owner), autocommit=True) as conn:
            tenant = conn.execute("SELECT nextval('org_unit_id_seq')").fetchone()[0]
            path = f"/1/{tenant}/"
            conn.execute(
                "INSERT INTO tenants (id, parent_id, kind, code, path)"
                " SELECT %s, id, 'county', 'c', %s FROM tenants WHERE kind = 'platform'",
                (tenant, path),
            )
            conn.execute(f"SET app.tenant_ids = '{int(tenant)}'")
            conn.execute(
                "INSERT INTO org_units (tenant_id, id, parent_tenant_id, parent_id, kind, code,"
                " name, path) VALUES (%s, %s, 1, 1, 'county', 'c', '县', %s)",
                (tenant, tenant, path),
            )
            for rid, stage in ((1001, "tallied"), (1002, "balloting")):
                conn.execute(
                    "INSERT INTO evaluation_rounds (tenant_id, id, batch, branch_id, branch_path,"
                    " year, half, title, policy_version, policy, opened_by, stage) VALUES"
                    " (%s, %s, gen_random_uuid(), %s, %s, 2026, %s, '评议', 1, '{}', 't', %s)",
                    (tenant, rid, tenant, path, rid - 1000, stage),
                )
                for position, (excellent, qualified) in enumerate(((2, 1), (0, 3)), start=1):
                    stored = (excellent, qualified, 0, 0) if stage == "tallied" else (None,) * 4
                    conn.execute(
                        "INSERT INTO evaluation_entries (tenant_id, round_id, member_id, name,"
                        " category, may_vote, position, excellent, qualified, basic,"
                        " unqualified) VALUES (%s, %s, %s, '党员', 'full', true, %s,"
                        " %s, %s, %s, %s)",
                        (tenant, rid, rid * 10 + position, position, *stored),
                    )
                    conn.execute(
                        "INSERT INTO evaluation_counts (tenant_id, round_id, position,"
                        " excellent, qualified) VALUES (%s, %s, %s, %s, %s)",
                        (tenant, rid, position, excellent, qualified),
                    )
            before = conn.execute(counters).fetchall()
            conn.execute("UPDATE evaluation_entries SET qualified = 2 WHERE round_id = 1001")

            def refused() -> None:
                with pytest.raises(DBAPIError, match="differ from"):
                    command.upgrade(config, "0018")
                version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                assert version == ("0017",)

            refused()  # entries that disagree with their counters
            conn.execute(
                "UPDATE evaluation_entries SET qualified = position * 2 - 1 WHERE round_id = 1001"
            )
            conn.execute(
                "INSERT INTO evaluation_counts (tenant_id, round_id, position, excellent)"
                " VALUES (%s, 1001, 3, 1)",
                (tenant,),
            )
            refused()  # a counter off the roster
            conn.execute("DELETE FROM evaluation_counts WHERE position = 3")
            assert conn.execute(counters).fetchall() == before
            command.upgrade(config, "0018")
            assert conn.execute(counters).fetchall() == [r for r in before if r[0] == 1002]
            assert conn.execute(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'evaluation_entries' AND column_name = 'shares'"
            ).fetchone() == (0,)
            command.downgrade(config, "0017")
            assert conn.execute(counters).fetchall() == before
            shares = conn.execute(
                "SELECT round_id, position, shares FROM evaluation_entries ORDER BY 1, 2"
            ).fetchall()
            assert shares == [
                (
                    1001,
                    1,
                    {"excellent": "2/3", "qualified": "1/3", "basic": "0/1", "unqualified": "0/1"},
                ),
                (
                    1001,
                    2,
                    {"excellent": "0/1", "qualified": "1/1", "basic": "0/1", "unqualified": "0/1"},
                ),
                (1002, 1, None),
                (1002, 2, None),
            ]
