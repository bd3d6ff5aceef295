"""The `worker` process: an RQ worker on Lumi's queues, with the scheduler, logging as JSON.

Run: `python -m jobs.worker [--burst]`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from redis.client import Pipeline
from rq import Worker, worker_registration
from rq.exceptions import StopRequested

from core import keys
from core.clients import make_queue_redis
from core.logs import configure_logging
from core.settings import ConfigError, load_settings, report_config_error
from jobs.queues import all_queues

log = logging.getLogger("lumi.worker")

# RQ re-runs (or fails) a job whose worker died once the job's heartbeat has lapsed (about 90 s) and a worker's
# maintenance pass finds it. RQ's default pass is every 10 minutes; every 30 s an interrupted webhook refresh is
# retried about two minutes after the crash rather than ten. A pass is a few Redis commands behind a shared lock.
MAINTENANCE_INTERVAL = 30


class LumiWorker(Worker):
    """An RQ worker that re-announces itself on every heartbeat.

    RQ registers a worker once, at birth. If Redis restarts without persistence or
    fails over, the registration is lost and /readyz would report no worker forever;
    re-adding it (two idempotent SADDs every ~30 s) makes the worker visible again.
    """

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        super().heartbeat(timeout, pipeline)
        worker_registration.register(self, pipeline)
        if pipeline is None:
            self._resume_abandoned_syncs()

    def _resume_abandoned_syncs(self) -> None:
        """A sync whose worker was killed holds an expired lock: queue it again, from its saved cursor."""
        from jobs.context import services
        from jobs.sync import resume_abandoned

        try:
            # One worker looks at a time, at most every few seconds.
            if self.connection.set(keys.RESUME_CHECK_LOCK, self.name, nx=True, ex=keys.RESUME_CHECK_INTERVAL):
                resume_abandoned(services())
        except StopRequested:
            raise  # RQ's SIGTERM handler raises it wherever the worker is: swallowing it would ignore the stop
        except Exception:  # noqa: BLE001 - a failed check must never stop the worker; it runs again soon
            log.exception("resume check failed")


def build_worker(settings_env: dict[str, str] | None = None) -> Worker:
    settings = load_settings(settings_env)
    configure_logging(settings.log_level)
    connection = make_queue_redis(settings)
    return LumiWorker(
        all_queues(connection),
        connection=connection,
        # Short TTL → an idle worker heartbeats every WORKER_TTL - 15 s, which /readyz relies on.
        worker_ttl=keys.WORKER_TTL,
        maintenance_interval=MAINTENANCE_INTERVAL,
        default_result_ttl=keys.JOB_RECORD_TTL,
        # Job descriptions include arguments; keep them out of the logs on principle.
        log_job_description=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a Lumi RQ worker.")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--no-scheduler", action="store_true", help="do not run the RQ scheduler")
    args = parser.parse_args(argv)
    try:
        worker = build_worker()
    except ConfigError as err:
        return report_config_error(err)
    from jobs.sweeps import schedule_next_sweep

    schedule_next_sweep(worker.connection)
    log.info("worker starting", extra={"queues": list(keys.QUEUES)})
    # RQ sets its own logger's level from this (INFO when not given), whatever LOG_LEVEL says.
    worker.work(burst=args.burst, with_scheduler=not args.no_scheduler,
                logging_level=logging.getLevelName(logging.getLogger().level))
    return 0


if __name__ == "__main__":
    sys.exit(main())
