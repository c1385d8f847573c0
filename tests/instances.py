"""Instances a test makes for itself and removes afterwards: their databases and their RabbitMQ vhost."""

from __future__ import annotations

import shutil

from psycopg import sql

from devtools import backup, instance
from devtools.environment import SHARED_TESTS_ROLE
from devtools.provision import run_rabbitmqctl


def drop_instance_data(platform: instance.Platform) -> None:
    """Drop every database of the instance and its vhost (its processes must be stopped)."""
    roles = [*platform.topology.service_names, SHARED_TESTS_ROLE]
    with backup.admin_connect(platform, "postgres", autocommit=True) as db:
        for role in roles:
            name = sql.Identifier(platform.instance.database(role))
            db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    rabbitmqctl = shutil.which("rabbitmqctl")
    vhosts = run_rabbitmqctl(rabbitmqctl, "-q", "list_vhosts", "--no-table-headers", "name").split()
    if platform.instance.broker_vhost in vhosts:
        run_rabbitmqctl(rabbitmqctl, "delete_vhost", platform.instance.broker_vhost)
