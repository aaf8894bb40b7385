# Deploys PEZ: the package (installed or upgraded), its settings, the service
# enabled and started, then a curl of /v1/forward must answer a number.
# Restarts (package or settings changed) are delayed to the end of the run;
# the check is queued after them, so it sees the new pez.
include_recipe 'pez::install'
include_recipe 'pez::configure'

service 'pez enabled and running' do
  service_name 'pez'
  action [:enable, :start]
end

verify = node['pez']['verify']
if verify['enabled']
  url = PezCookbook::EnvFile.verify_url(node['pez']['env']['listen'], verify['path'])
  # With PEZ_TOKENS set, taking a number needs a token.
  token = PezCookbook::EnvFile.verify_token(node['pez']['env'])

  # systemctl start returns once pez has said READY=1 (first blocks leased),
  # so the retries only cover a restart still in progress.
  curl = "curl -fsS --max-time 5 --retry #{verify['attempts'].to_i} --retry-delay 1 --retry-connrefused"
  answers_a_number = "grep -Eqx '\\[?[0-9]+(, *[0-9]+)*\\]?'"
  execute 'pez answers /v1/forward' do
    if token
      # The header reaches curl on its stdin (printf is a shell builtin),
      # never in a process's arguments; sensitive keeps it out of the logs.
      command "printf '%s\\n' \"$PEZ_VERIFY_HEADER\" | #{curl} -K - '#{url}' | #{answers_a_number}"
      environment('PEZ_VERIFY_HEADER' => PezCookbook::EnvFile.curl_config_header(token))
      sensitive true
    else
      command "#{curl} '#{url}' | #{answers_a_number}"
    end
    action :nothing
  end

  log 'pez deployed: checking it answers' do
    message "pez: checking #{url}"
    notifies :run, 'execute[pez answers /v1/forward]', :delayed
  end
end
