# Attributes of the pez cookbook. Set them in the node's JSON (chef-solo -j,
# the JsonAttributesContent of AWS-ApplyChefRecipes, or a role), e.g.
#   { "pez": { "package": { "yum_baseurl": "https://repo.internal/pez/" },
#              "env": { "listen": "0.0.0.0:8000", "db_host": "pez.xxxx.rds.amazonaws.com" } } }

## Where the RPM comes from: a yum repository, or a local file (one of them).
# Base URL of a yum repository holding pez-<version>-1.x86_64.rpm.
default['pez']['package']['yum_baseurl'] = nil
default['pez']['package']['yum_gpgcheck'] = true
# URL of the repository's signing key (needed when yum_gpgcheck is true).
default['pez']['package']['yum_gpgkey'] = nil
# A local RPM file instead, e.g. /tmp/pez-0.1.0-1.x86_64.rpm; wins over the
# repository when set.
default['pez']['package']['rpm_path'] = nil
# A version to install from the repository (e.g. '0.1.0-1'); nil installs the
# newest and upgrades to it on every deploy.
default['pez']['package']['version'] = nil

## /etc/pez/pez.env: one attribute per PEZ_* variable, named after it
## (PEZ_DB_HOST is node['pez']['env']['db_host']). nil leaves the variable
## unset, so PEZ uses its own default (shown here; `pez --help` has them all).
# Address and port to serve HTTP on (PEZ: 127.0.0.1:8000). Behind a load
# balancer: '0.0.0.0:8000'.
default['pez']['env']['listen'] = nil
# Directory of the embedded store; the package's is /var/lib/pez.
default['pez']['env']['data_dir'] = '/var/lib/pez'
# Largest count of a /v2 request (PEZ: 100).
default['pez']['env']['max_count'] = nil
# Log filter (PEZ: info).
default['pez']['env']['log'] = nil
# First and smallest block leased (PEZ: 1000).
default['pez']['env']['block_size'] = nil
# Largest block leased (PEZ: 1000000).
default['pez']['env']['block_max'] = nil
# Milliseconds a request waits for the store before 503 (PEZ: 1000).
default['pez']['env']['lease_wait_ms'] = nil
# Milliseconds an embedded store call waits for a lock held elsewhere (PEZ: 500).
default['pez']['env']['store_timeout_ms'] = nil
# Milliseconds a graceful stop waits for requests in flight, and again for
# giving unused numbers back (PEZ: 5000; the unit allows 15 s for the whole stop).
default['pez']['env']['shutdown_timeout_ms'] = nil
# Log lines: text or json (PEZ: text).
default['pez']['env']['log_format'] = nil
# Most connections served at once (PEZ: 1024).
default['pez']['env']['max_connections'] = nil
# Milliseconds a new connection has to send its first request's headers (PEZ: 5000).
default['pez']['env']['header_timeout_ms'] = nil
# Milliseconds a kept-alive connection may take to send its next request's
# headers, or a client to take any byte of its answers (PEZ: 60000).
default['pez']['env']['idle_timeout_ms'] = nil
# Milliseconds a request may take before 503 (PEZ: 10000).
default['pez']['env']['request_timeout_ms'] = nil
# Largest request body in bytes (PEZ: 16384).
default['pez']['env']['max_body_bytes'] = nil
# Milliseconds between looks at the store for other instances' changes to
# sequences (PEZ: 1000).
default['pez']['env']['sync_interval_ms'] = nil
# Largest count of a range lease (PEZ: 1000000).
default['pez']['env']['max_lease'] = nil
# Bearer token of the admin API (it also takes numbers and range leases);
# nil: the admin API is off. A secret: like
# the password, better from a place that is not a plain node attribute.
default['pez']['env']['admin_token'] = nil
# Tokens that may take numbers: 'a,b,c' or '@/etc/pez/tokens'; nil: open.
default['pez']['env']['tokens'] = nil
# Tokens that may read /metrics and the status page's details (for Prometheus):
# 'a,b' or '@/etc/pez/metrics-tokens'; nil: only the admin token may, once any
# token is set.
default['pez']['env']['metrics_tokens'] = nil
# Tokens that may take range leases (and numbers), in the same forms; set,
# tokens of 'tokens' may only take numbers. nil: as before (recommended: set).
default['pez']['env']['lease_tokens'] = nil
# PostgreSQL as one URL or conninfo string (selects PostgreSQL).
default['pez']['env']['database_url'] = nil
# PostgreSQL host, e.g. the RDS endpoint (selects PostgreSQL).
default['pez']['env']['db_host'] = nil
# PostgreSQL port (PEZ: 5432).
default['pez']['env']['db_port'] = nil
# Database name (PEZ: pez).
default['pez']['env']['db_name'] = nil
# Database user (PEZ: pezuser).
default['pez']['env']['db_username'] = nil
# Database password. Better from an encrypted data bag (below) than here:
# node attributes are stored and shown in plain text.
default['pez']['env']['db_password'] = nil
# TLS mode (PEZ: prefer, or what database_url says). On RDS: 'verify-full' with db_sslrootcert.
default['pez']['env']['db_sslmode'] = nil
# CA bundle for verify-ca/verify-full, e.g. '/etc/pez/rds-global-bundle.pem'.
default['pez']['env']['db_sslrootcert'] = nil
# Connections per instance (PEZ: 4).
default['pez']['env']['db_pool_size'] = nil
# Milliseconds for each PostgreSQL statement and lock wait, and for getting a
# pooled connection; a call still running after twice this is cancelled and
# counts as failed (PEZ: 1000).
default['pez']['env']['db_timeout_ms'] = nil
# Milliseconds of retrying at start while PostgreSQL is not up (PEZ: 30000).
default['pez']['env']['db_startup_timeout_ms'] = nil

## The database password from an encrypted data bag item, used when
## node['pez']['env']['db_password'] is nil: data_bag_item(bag, item)[key].
default['pez']['db_password_data_bag']['bag'] = nil
default['pez']['db_password_data_bag']['item'] = 'database'
default['pez']['db_password_data_bag']['key'] = 'password'
# The secret's file; nil uses Chef's encrypted_data_bag_secret setting
# (/etc/chef/encrypted_data_bag_secret by default).
default['pez']['db_password_data_bag']['secret_file'] = nil

## The RDS CA bundle, downloaded to db_sslrootcert when a URL is set, e.g.
## https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
default['pez']['rds_ca_bundle_url'] = nil

## After a deploy, a curl of /readyz must answer 200 (ready: the store
## answers, numbers are on hand). It takes no number; a path that does
## (/v1/forward, as the original PEZ's deploy checked) must answer one, with
## the first of env.tokens when they are set.
default['pez']['verify']['enabled'] = true
default['pez']['verify']['path'] = '/readyz'
default['pez']['verify']['attempts'] = 10
