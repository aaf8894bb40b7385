# Installs or upgrades the pez RPM: from a local file
# (node['pez']['package']['rpm_path']) or a yum repository
# (node['pez']['package']['yum_baseurl']). The RPM creates the pez user and
# group, /etc/pez/pez.env and /var/lib/pez; on an upgrade its own scriptlet
# restarts a running pez, and so does the notification here.
include_recipe 'pez::service'

pkg = node['pez']['package']

if pkg['rpm_path'] && !pkg['rpm_path'].empty?
  package 'pez' do
    source pkg['rpm_path']
    action :upgrade
    notifies :restart, 'service[pez]', :delayed
  end
elsif pkg['yum_baseurl'] && !pkg['yum_baseurl'].empty?
  yum_repository 'pez' do
    description 'PEZ'
    baseurl pkg['yum_baseurl']
    gpgcheck pkg['yum_gpgcheck']
    gpgkey pkg['yum_gpgkey'] if pkg['yum_gpgkey']
  end

  package 'pez' do
    version pkg['version'] if pkg['version']
    action pkg['version'] ? :install : :upgrade
    notifies :restart, 'service[pez]', :delayed
  end
else
  raise "pez: set node['pez']['package']['rpm_path'] (a local RPM) or " \
        "node['pez']['package']['yum_baseurl'] (a yum repository)"
end
