# chef-solo configuration for the pez cookbook, from a checkout or an
# unpacked archive of this directory:
#   chef-solo -c chef/solo.rb -j /etc/chef/pez.json -o 'recipe[pez::deploy]'
here = File.expand_path(__dir__)
cookbook_path [File.join(here, 'cookbooks')]
data_bag_path File.join(here, 'data_bags')
file_cache_path '/var/chef/cache'
# Encrypted data bags (the database password) are opened with this secret.
encrypted_data_bag_secret '/etc/chef/encrypted_data_bag_secret'
