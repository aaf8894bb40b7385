# %preun: $1 is the number of pez packages left afterwards; 0 means removal
# (not upgrade). Stop is PEZ's graceful stop: requests in flight finish and
# the unused numbers go back to the store.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now pez.service >/dev/null 2>&1 || :
fi
exit 0
