# %postun: $1 >= 1 means an upgrade: the new files are in place, so restart
# pez if it runs (try-restart leaves a stopped service stopped). The restart
# is a graceful stop and a start: no number is lost or repeated.
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -ge 1 ]; then
    systemctl try-restart pez.service >/dev/null 2>&1 || :
fi
exit 0
