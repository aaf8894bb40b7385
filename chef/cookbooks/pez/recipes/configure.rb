# Renders /etc/pez/pez.env from node['pez']['env'] (root:pez, 0640: it may
# hold the database password) and restarts pez when it changed. With
# node['pez']['rds_ca_bundle_url'], downloads the RDS CA bundle to
# node['pez']['env']['db_sslrootcert'] first.
include_recipe 'pez::service'

env = node['pez']['env']

password = env['db_password']
bag = node['pez']['db_password_data_bag']
if password.nil? && bag['bag']
  secret = bag['secret_file'] ? Chef::EncryptedDataBagItem.load_secret(bag['secret_file']) : nil
  item = data_bag_item(bag['bag'], bag['item'], secret)
  password = item[bag['key']]
  raise "pez: data bag item #{bag['bag']}/#{bag['item']} has no '#{bag['key']}'" if password.nil?
end

if node['pez']['rds_ca_bundle_url']
  raise "pez: node['pez']['rds_ca_bundle_url'] needs node['pez']['env']['db_sslrootcert'] (where to put it)" unless env['db_sslrootcert']

  remote_file env['db_sslrootcert'] do
    source node['pez']['rds_ca_bundle_url']
    owner 'root'
    group 'pez'
    mode '0644'
    notifies :restart, 'service[pez]', :delayed
  end
end

template '/etc/pez/pez.env' do
  source 'pez.env.erb'
  owner 'root'
  group 'pez'
  mode '0640'
  sensitive true # the password stays out of Chef's logs and diffs
  variables(settings: PezCookbook::EnvFile.settings(env, password))
  notifies :restart, 'service[pez]', :delayed
end
