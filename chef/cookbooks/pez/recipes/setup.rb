# OpsWorks lifecycle event Setup (an instance has booted): install the RPM.
include_recipe 'pez::install'
