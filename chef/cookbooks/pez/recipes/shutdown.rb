# OpsWorks lifecycle event Shutdown (before the instance stops): stop pez
# gracefully, so requests in flight finish and its unused numbers go back to
# the store. systemctl stop is exactly that.
service 'pez' do
  action :stop
end
