# %pre: the pez system user and group, before the files they own are laid
# down (/etc/pez/pez.env is root:pez, /var/lib/pez is pez:pez). Kept on
# removal: files the user still owns (the embedded store) must keep an owner.
getent group pez >/dev/null 2>&1 || groupadd -r pez
getent passwd pez >/dev/null 2>&1 || \
    useradd -r -g pez -d /var/lib/pez -s /sbin/nologin -c "PEZ number service" pez
exit 0
