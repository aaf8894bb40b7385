# The pez service, for the other recipes to notify. Declares nothing to do by
# itself: pez::deploy enables and starts it.
service 'pez' do
  supports status: true, restart: true, reload: false
  action :nothing
end
