# %post: the embedded store's directory, then systemd learns about the new or
# changed unit. An existing /var/lib/pez is left exactly as it is: it holds
# the store (and the unit's StateDirectory=pez makes it too, at start).
if [ ! -d /var/lib/pez ]; then
    install -d -m 0750 -o pez -g pez /var/lib/pez
fi
# A fresh install does not enable or start pez: /etc/pez/pez.env needs
# editing first (then: systemctl enable --now pez). Without a running systemd
# (a container, an image build) there is nothing to reload.
systemctl daemon-reload >/dev/null 2>&1 || :
exit 0
