# OpsWorks lifecycle event Undeploy: stop pez gracefully and disable it. The
# package and /var/lib/pez stay (the embedded store must outlive the service:
# it is what keeps numbers from being issued twice).
service 'pez' do
  action [:stop, :disable]
end
