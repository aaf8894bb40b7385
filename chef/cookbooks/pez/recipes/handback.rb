# Rolls back a cutover from the original PEZ (docs/deploy.md, "Taking over
# from the original PEZ"): stops and disables pez on this node, then gives
# forward and reverse back to the original's nodes, so that their
# forward_seq and backward_seq count in ones again from past every number
# PEZ reserved. Run pez::undeploy on every PEZ node first, then this on one:
# `pez handback` refuses while any PEZ is still connected to the database,
# and needs the database user that owns the sequences: the service's own
# settings are used, as the user that took them over owns them.
# (Without it the original's nodes re-issue nothing either; they only go on
# taking numbers 1000 apart.)
include_recipe 'pez::undeploy'

# systemd-run reads /etc/pez/pez.env exactly as the service does (its
# EnvironmentFile syntax, not a shell's) and runs pez as the pez user.
execute 'pez handback' do
  command 'systemd-run --quiet --wait --pipe --collect -p User=pez -p Group=pez ' \
          '-p EnvironmentFile=/etc/pez/pez.env /usr/bin/pez handback'
  live_stream true
end
