"""The one owner of Redis key names, their TTLs and RQ queue names.

Every key Lumi writes is built here and starts with `lumi:`, so an operator can
see at a glance what belongs to us. Key parts never contain `:` from user input
(shop domains cannot), and RQ job ids built here never contain `:` (RQ 2.1+).
"""

from __future__ import annotations

PREFIX = "lumi"

# --- RQ -------------------------------------------------------------------------------------------

# Queues, in the order a worker serves them (most urgent first).
QUEUE_WEBHOOKS = "lumi-webhooks"  # incremental updates from webhooks: seconds matter
QUEUE_DEFAULT = "lumi-default"  # deletion requests, compliance, emails
QUEUE_SYNC = "lumi-sync"  # full catalogue syncs: long, may wait
QUEUES: tuple[str, ...] = (QUEUE_WEBHOOKS, QUEUE_DEFAULT, QUEUE_SYNC)

# An idle worker heartbeats every WORKER_TTL - 15 s (RQ's rule), so /readyz can require one per minute.
WORKER_TTL = 45

# Job records (RQ results and failures, and our own sync records) expire after 7 days: a data promise.
JOB_RECORD_TTL = 7 * 24 * 3600

# --- Shops ----------------------------------------------------------------------------------------


def shop(shop_domain: str) -> str:
    """Hash: the shop record (scopes, plan, install time, encrypted tokens, settings JSON + version)."""
    return f"{PREFIX}:shop:{shop_domain}"


# Set of installed shop domains (daily sweeps walk it).
SHOPS_INSTALLED = f"{PREFIX}:shops:installed"
# Sorted set: uninstalled shop domain → uninstall time; the purge sweep guarantees deletion within 30 days.
SHOPS_UNINSTALLED = f"{PREFIX}:shops:uninstalled"


def token_refresh_lock(shop_domain: str) -> str:
    """One offline-token refresh at a time per shop (a rotated refresh token must never be burnt twice)."""
    return f"{PREFIX}:lock:token-refresh:{shop_domain}"


TOKEN_REFRESH_LOCK_TTL = 30  # seconds: longer than a token request, short enough if a worker dies

# --- OAuth ----------------------------------------------------------------------------------------


def oauth_state(state: str) -> str:
    """One-time OAuth `state` → shop it was issued for."""
    return f"{PREFIX}:oauth:state:{state}"


OAUTH_STATE_TTL = 600  # seconds a merchant has to approve the install screen

# --- Webhooks -------------------------------------------------------------------------------------


def webhook_seen(webhook_id: str) -> str:
    """Set once per delivery id; Shopify retries for 4 hours, so 48 h of memory covers every retry."""
    return f"{PREFIX}:webhook:seen:{webhook_id}"


WEBHOOK_DEDUPE_TTL = 48 * 3600


def webhook_topic_log(shop_domain: str) -> str:
    """Capped list of recent deliveries per shop (topic, id, time; never payloads): what arrived and when."""
    return f"{PREFIX}:webhook:log:{shop_domain}"


WEBHOOK_LOG_LENGTH = 200
WEBHOOK_LOG_TTL = 7 * 24 * 3600

# --- Deletion receipts ----------------------------------------------------------------------------


def deletion_receipts(shop_domain: str) -> str:
    """List of deletion receipts (what was deleted, counts, when; no personal data). Kept after deletion."""
    return f"{PREFIX}:receipts:{shop_domain}"


RECEIPT_TTL = 400 * 24 * 3600  # a year and a bit: long enough to answer an audit, then gone too


def deletion_request(shop_domain: str, request_id: str) -> str:
    """String (JSON): a merchant's deletion request (categories, status, times, then its receipt; no personal
    data). Kept as long as receipts: it is the receipt's record on the admin page."""
    return f"{PREFIX}:deletion:{shop_domain}:{request_id}"


def deletion_lock(shop_domain: str) -> str:
    """String: the id of the shop's deletion request that is queued or running (SET NX by the web process, so two
    confirms cannot both queue one; deleted by the job when it ends, done or failed)."""
    return f"{PREFIX}:deletion-lock:{shop_domain}"


# Longer than a deletion waits in the queue and runs (RQ's job timeout is 180 s); short enough that a request whose
# worker was killed mid-purge blocks the next one for an hour at most.
DELETION_LOCK_TTL = 3600


def health_probe() -> str:
    """A throwaway key /readyz may write to prove Redis accepts writes."""
    return f"{PREFIX}:health:probe"


# --- Catalogue index --------------------------------------------------------------------------------


def sync_record(shop_domain: str) -> str:
    """Hash: the shop's current/last sync job record (status, phase, cursor, counts, times). 7-day TTL."""
    return f"{PREFIX}:sync:{shop_domain}"


def sync_lock(shop_domain: str) -> str:
    """One sync per shop; held with a short TTL renewed by the running job, so a dead worker frees it."""
    return f"{PREFIX}:lock:sync:{shop_domain}"


SYNC_LOCK_TTL = 10  # seconds; the running sync renews it every few seconds


def index_state(shop_domain: str) -> str:
    """Hash: the live generation, last completed sync time and last error of the shop's index."""
    return f"{PREFIX}:index:{shop_domain}"


def index_touched(shop_domain: str) -> str:
    """Set of product ids changed by webhooks while a sync runs; re-fetched when the sync ends."""
    return f"{PREFIX}:index:touched:{shop_domain}"


def index_tombstones(shop_domain: str) -> str:
    """Hash product id → deletion time: products deleted by webhook that an older sync page must not revive."""
    return f"{PREFIX}:index:tombstones:{shop_domain}"


TOMBSTONE_TTL = 24 * 3600


def index_pending(shop_domain: str) -> str:
    """Set of product ids with an update job queued: a burst of webhooks for one product is one fetch."""
    return f"{PREFIX}:index:pending:{shop_domain}"


def sales_signals(shop_domain: str) -> str:
    """Hash product id → "units_7d,units_30d" (counts only: no order, customer or price detail)."""
    return f"{PREFIX}:signals:{shop_domain}"


SIGNALS_TTL = 2 * 24 * 3600  # recomputed nightly; stale counts vanish rather than linger

# Workers look for abandoned syncs (killed worker, expired lock) at most this often, one at a time.
RESUME_CHECK_LOCK = f"{PREFIX}:lock:resume-check"
RESUME_CHECK_INTERVAL = 5

# --- Feed caches -------------------------------------------------------------------------------------


def feeds_version(shop_domain: str) -> str:
    """Counter bumped on every index write for the shop: cached feed bodies keyed on it become unreachable."""
    return f"{PREFIX}:feeds:version:{shop_domain}"


def feed_body(shop_domain: str, fingerprint: str) -> str:
    """Hash: a rendered feed (etag, gzip body, products) for one (feed, params, settings, index) version."""
    return f"{PREFIX}:feeds:body:{shop_domain}:{fingerprint}"


def feed_last_good(shop_domain: str, request_key: str) -> str:
    """The last good body for a (feed, params), whatever the versions: served stale when Meilisearch is down."""
    return f"{PREFIX}:feeds:stale:{shop_domain}:{request_key}"


def feed_fill_lock(shop_domain: str, fingerprint: str) -> str:
    """Held by the one request computing a missing feed; the others wait for its body (no stampede)."""
    return f"{PREFIX}:lock:feed:{shop_domain}:{fingerprint}"


FEED_BODY_TTL = 600
FEED_LAST_GOOD_TTL = 24 * 3600
FEED_FILL_LOCK_TTL = 5

# --- Chat ------------------------------------------------------------------------------------------
# Everything about a session expires at one absolute time (start + the plan's retention): chat.store sets
# EXPIREAT on every key it writes. Shared keys (history index buckets, analytics buckets) are grouped by
# start time and expire at bucket start + retention, i.e. never after any session they mention.


def chat_session(shop_domain: str, session_id: str) -> str:
    """Hash: one session's metadata (times, counts, sentiment, escalated/resolved, verified order refs, failed
    verifications in the current hour)."""
    return f"{PREFIX}:chat:{shop_domain}:session:{session_id}"


def chat_transcript(shop_domain: str, session_id: str) -> str:
    """List: one session's messages, redacted, as JSON."""
    return f"{PREFIX}:chat:{shop_domain}:transcript:{session_id}"


def chat_order_failures(shop_domain: str, order_digest: str) -> str:
    """Counter: failed verifications naming one order (by a keyed digest of its name), for an hour."""
    return f"{PREFIX}:chat:{shop_domain}:verify-fail-order:{order_digest}"


def chat_index(shop_domain: str, bucket: int) -> str:
    """Sorted set: ids of the sessions that started in one time bucket (score: start, ms)."""
    return f"{PREFIX}:chat:{shop_domain}:index:{bucket}"


def chat_stats(shop_domain: str, bucket: int) -> str:
    """Hash: aggregate counters of the sessions that started in one time bucket (no ids of any kind)."""
    return f"{PREFIX}:chat:{shop_domain}:stats:{bucket}"


def chat_buckets(shop_domain: str) -> str:
    """Sorted set: the time buckets (start timestamps only) that have an index or stats key."""
    return f"{PREFIX}:chat:{shop_domain}:buckets"


def chat_new_sessions(shop_domain: str, minute: int) -> str:
    """Counter: sessions a shop's storefront opened in one minute (a flood guard; no ids)."""
    return f"{PREFIX}:chat:{shop_domain}:rate:{minute}"


CHAT_RATE_TTL = 120  # seconds a per-minute counter lives


def chat_reply_times(shop_domain: str, bucket: int) -> str:
    """List: first-reply times (ms) of the sessions that started in one time bucket (numbers only, no ids), so
    analytics report a true median."""
    return f"{PREFIX}:chat:{shop_domain}:replies:{bucket}"


def chat_origins(shop_domain: str) -> str:
    """String (JSON list): the shop's storefront origins (myshopify domain and primary domain), which the direct
    chat stream answers with CORS. Store configuration read from the Admin API, cached briefly."""
    return f"{PREFIX}:chat:{shop_domain}:origins:storefront"


CHAT_ORIGINS_TTL = 300  # a changed primary domain is honoured within five minutes


def chat_pattern(shop_domain: str) -> str:
    """Every chat key of a shop (purge and inventory only)."""
    return f"{PREFIX}:chat:{shop_domain}:*"


CHAT_VERIFY_WINDOW = 3600  # failed verification attempts are counted per hour
CHAT_MAX_BUCKET = 3600  # history/analytics bucket width for day-scale retention (seconds)

# --- Admin: catalogue freshness --------------------------------------------------------------------------


def index_pending_since(shop_domain: str) -> str:
    """Hash product id → arrival time of the oldest product webhook its queued refresh has not yet shown."""
    return f"{PREFIX}:index:pending-since:{shop_domain}"


def feed_freshness(shop_domain: str) -> str:
    """Sorted set: seconds from a product webhook's arrival to its index write being visible (member
    "<seconds>:<nonce>", score: when it became visible); numbers only, the last FRESHNESS_WINDOW kept."""
    return f"{PREFIX}:feeds:freshness:{shop_domain}"


FRESHNESS_WINDOW = 24 * 3600  # the admin reports the last 24 h; older samples are dropped

# --- Escalation reply-to (issue 15) ------------------------------------------------------------------
# The optional reply-to address a shopper leaves on the escalation form is the only shopper email that ever
# reaches Redis: sealed (Fernet), under its own key, for at most an hour (and never after its session), and
# deleted by the job as soon as the email is sent. The RQ job carries only the opaque reference, so neither the
# job's arguments nor the failed-job registry ever hold the address. Under the shop's chat namespace, so a chat
# purge (`chat_pattern`) removes it too.


def escalation_reply_to(shop_domain: str, ref: str) -> str:
    """String: one escalation's sealed reply-to address (`ref` is random, never derived from the address)."""
    return f"{PREFIX}:chat:{shop_domain}:reply-to:{ref}"


ESCALATION_REPLY_TO_TTL = 3600  # seconds; longer than every retry of the email (RETRY_INTERVALS sum to 1270 s)

# --- Compliance index and data-request answers (issue 15, customers/redact and customers/data_request) -----
# Chat sessions that touched a customer or an order are findable by a keyed digest of its id (chat.store.
# subject_digest: HMAC with the app secret; the raw id never appears in a key name or value). Each session is
# listed in a set named by the digest and the session's own expiry time, which expires exactly when the session
# does; a sorted set per digest lists those expiry times (times only, no session ids) and expires with the
# latest of them. Both live under the shop's chat namespace, so a chat purge (`chat_pattern`) removes them.


def chat_subject(shop_domain: str, digest: str) -> str:
    """Sorted set: the expiry times (member and score) of the sessions linked to one customer or order digest."""
    return f"{PREFIX}:chat:{shop_domain}:subject:{digest}"


def chat_subject_sessions(shop_domain: str, digest: str, expires_at: int) -> str:
    """Set: ids of the sessions linked to one digest that expire at `expires_at`; the key expires then too."""
    return f"{PREFIX}:chat:{shop_domain}:subject-sessions:{digest}:{expires_at}"


def data_request_answer(shop_domain: str, request_id: str) -> str:
    """String (JSON): what Lumi delivered to the merchant for one customers/data_request (the redacted
    transcripts it found, or the statement that there were none), for the admin page."""
    return f"{PREFIX}:data-request:{shop_domain}:{request_id}"


def data_request_pattern(shop_domain: str) -> str:
    """Every data-request answer of a shop (listing, purge and inventory)."""
    return f"{PREFIX}:data-request:{shop_domain}:*"


DATA_REQUEST_TTL = 30 * 24 * 3600  # Shopify gives the merchant 30 days to answer the customer
