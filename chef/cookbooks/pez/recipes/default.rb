# Everything, in lifecycle order: install, configure, deploy (deploy includes
# the other two).
include_recipe 'pez::deploy'
