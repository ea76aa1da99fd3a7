"""Django settings. Everything a deployment changes comes from the environment:

- ``PATRON_HOME``: data folder (SQLite file, Parquet lake, key files); default ``./.patron``
- ``DATABASE_URL``: use PostgreSQL (or another database) instead of the embedded SQLite file
- ``PATRON_SECRET_KEY``, ``PATRON_DATA_KEY``: keys; generated into PATRON_HOME when absent
- ``PATRON_DEBUG``, ``PATRON_ALLOWED_HOSTS``, ``PATRON_TIME_ZONE``
- ``PATRON_TASKS_BACKEND``: ``database`` (default: ``patron worker`` runs the queue) or
  ``immediate`` (every job runs where it is enqueued: tests, scripts); see docs/jobs.md
- ``EMAIL_HOST`` (and ``EMAIL_PORT``, ``EMAIL_HOST_USER``, …), ``PATRON_OUTBOX_ADAPTERS``,
  ``PATRON_OUTBOX_WEBHOOK_URL``/``_SECRET``, ``PATRON_PUBLIC_URL``: messages to customers;
  see docs/outbox.md
- ``PATRON_SERVICE_WEBHOOK_SECRET``, ``PATRON_MAIL_INBOX``: the service desk's channels; see
  docs/service-channels.md
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from patron.paths import patron_home, read_or_create_secret

BASE_DIR = Path(__file__).resolve().parent
HOME = patron_home()

SECRET_KEY = os.environ.get("PATRON_SECRET_KEY") or read_or_create_secret("secret.key").hex()
DEBUG = os.environ.get("PATRON_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("PATRON_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_tasks_db",
    "patron.account",
    "patron.audit",
    "patron.customer",
    "patron.commerce",
    "patron.service",
    "patron.knowledge",
    "patron.complaints",
    "patron.aftersales",
    "patron.satisfaction",
    "patron.ingest",
    "patron.scoring",
    "patron.risk",
    "patron.insight",
    "patron.outbox",
    "patron.loyalty",
    "patron.marketing",
    "patron.care",
    "patron.recommend",
    "patron.certification",
    "patron.jobs",
    "patron.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "patron.urls"
WSGI_APPLICATION = "patron.wsgi.application"
AUTH_USER_MODEL = "account.User"
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:customer-list"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "patron.web.context.navigation",
            ],
        },
    },
]

_sqlite_path = HOME / "patron.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{_sqlite_path}",
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web app read while an import writes; IMMEDIATE avoids lock upgrades.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory, so that tests can run the CLI in a subprocess against it.
    DATABASES["default"]["TEST"] = {"NAME": str(HOME / "test.sqlite3")}
    # Keep a worker's connection between requests: opening one costs more than a checkout
    # policy answer (bench/checkout_policy.py).
    DATABASES["default"]["CONN_MAX_AGE"] = 300
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = os.environ.get("PATRON_TIME_ZONE", "Asia/Shanghai")

STATIC_URL = "static/"
STATIC_ROOT = HOME / "static"
# WhiteNoise serves from the app folders but warns on every request if this is absent.
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"

# Background jobs (docs/jobs.md): Django's Tasks API; the queue is a table in the database.
TASK_QUEUES = ["default", "scoring"]
_TASK_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "immediate": "django.tasks.backends.immediate.ImmediateBackend",
}
_tasks_backend = os.environ.get("PATRON_TASKS_BACKEND", "database")
if _tasks_backend not in _TASK_BACKENDS:
    raise ImproperlyConfigured(
        f"PATRON_TASKS_BACKEND={_tasks_backend!r}: use one of {', '.join(_TASK_BACKENDS)}"
    )
TASKS = {
    "default": {"BACKEND": _TASK_BACKENDS[_tasks_backend], "QUEUES": TASK_QUEUES},
    # `patron jobs run NAME --now` runs a job in the calling process through this one.
    "immediate": {"BACKEND": _TASK_BACKENDS["immediate"], "QUEUES": TASK_QUEUES},
}

DEFAULT_CURRENCY = "CNY"
LAKE_DIR = HOME / "lake"

# Messages to customers (patron.outbox, docs/outbox.md). E-mail goes through Django's default
# mailer: SMTP when EMAIL_HOST is set, else one file per message in PATRON_HOME/outbox/mail, so
# that nothing leaves the machine unless someone configured it to. Django 6.1 configures mail
# with MAILERS (EMAIL_BACKEND and its family are deprecated and cannot be mixed with it).
PATRON_OUTBOX_DIR = HOME / "outbox"
_TRUE = {"1", "true", "yes", "on"}
if os.environ.get("EMAIL_HOST"):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": os.environ["EMAIL_HOST"],
                "port": int(os.environ["EMAIL_PORT"]) if os.environ.get("EMAIL_PORT") else None,
                "username": os.environ.get("EMAIL_HOST_USER", ""),
                "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
                "use_tls": os.environ.get("EMAIL_USE_TLS", "").lower() in _TRUE,
                "use_ssl": os.environ.get("EMAIL_USE_SSL", "").lower() in _TRUE,
                "timeout": float(os.environ.get("EMAIL_TIMEOUT", "10")),
            },
        }
    }
else:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(PATRON_OUTBOX_DIR / "mail")},
        }
    }
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Patron <noreply@localhost>")
# Channel -> adapter (email, file, webhook, or an adapter class's dotted path). Override some
# with PATRON_OUTBOX_ADAPTERS="sms=webhook,app=webhook".
PATRON_OUTBOX_ADAPTERS = {
    "email": "email",
    "sms": "file",
    "wechat": "file",
    "app": "file",
    "phone": "file",
}
for _pair in filter(None, os.environ.get("PATRON_OUTBOX_ADAPTERS", "").split(",")):
    _channel, _equals, _adapter = (part.strip() for part in _pair.partition("="))
    if not _equals or _channel not in PATRON_OUTBOX_ADAPTERS or not _adapter:
        raise ImproperlyConfigured(
            f"PATRON_OUTBOX_ADAPTERS: {_pair!r} is not CHANNEL=ADAPTER with CHANNEL one of "
            f"{', '.join(PATRON_OUTBOX_ADAPTERS)}"
        )
    PATRON_OUTBOX_ADAPTERS[_channel] = _adapter
PATRON_OUTBOX_WEBHOOK_URL = os.environ.get("PATRON_OUTBOX_WEBHOOK_URL", "")
PATRON_OUTBOX_WEBHOOK_SECRET = os.environ.get("PATRON_OUTBOX_WEBHOOK_SECRET", "")
# Where customers reach this site: links in messages (unsubscribe) start with it.
PATRON_PUBLIC_URL = os.environ.get("PATRON_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# The service desk's channels (docs/service-channels.md): the connectors' webhook secret (empty:
# the webhook answers 503) and the folder of inbound .eml files the mail poll reads.
PATRON_SERVICE_WEBHOOK_SECRET = os.environ.get("PATRON_SERVICE_WEBHOOK_SECRET", "")
PATRON_MAIL_INBOX = Path(os.environ.get("PATRON_MAIL_INBOX") or HOME / "mail" / "inbox")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PATRON_LOG_LEVEL", "WARNING")},
}
