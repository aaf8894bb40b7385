# Deploys PEZ: the package (installed or upgraded), its settings, the service
# enabled and started, then a curl of /readyz must answer 200: the store
# answers and numbers are on hand. The check takes no number (an older
# version curled /v1/forward, spending one number per deploy). Restarts
# (package or settings changed) are delayed to the end of the run; the check
# is queued after them, so it sees the new pez.
include_recipe 'pez::install'
include_recipe 'pez::configure'

service 'pez enabled and running' do
  service_name 'pez'
  action [:enable, :start]
end

verify = node['pez']['verify']
if verify['enabled']
  path = verify['path']
  url = PezCookbook::EnvFile.verify_url(node['pez']['env']['listen'], path)
  # /readyz and the other operator endpoints are open; a path that takes
  # numbers (/v1/..., /v2/...) needs a token when PEZ_TOKENS is set, and
  # must answer a number.
  takes_numbers = path.to_s.start_with?('/v1/', '/v2/')
  token = takes_numbers ? PezCookbook::EnvFile.verify_token(node['pez']['env']) : nil

  # systemctl start returns once pez has said READY=1 (first blocks leased),
  # so the retries only cover a restart still in progress. curl -f fails on
  # /readyz's 503 (not ready) as on a refused connection.
  curl = "curl -fsS --max-time 5 --retry #{verify['attempts'].to_i} --retry-delay 1 --retry-connrefused"
  answers = takes_numbers ? " | grep -Eqx '\\[?[0-9]+(, *[0-9]+)*\\]?'" : ' >/dev/null'
  execute 'pez is ready' do
    if token
      # The header reaches curl on its stdin (printf is a shell builtin),
      # never in a process's arguments; sensitive keeps it out of the logs.
      command "printf '%s\\n' \"$PEZ_VERIFY_HEADER\" | #{curl} -K - '#{url}'#{answers}"
      environment('PEZ_VERIFY_HEADER' => PezCookbook::EnvFile.curl_config_header(token))
      sensitive true
    else
      command "#{curl} '#{url}'#{answers}"
    end
    action :nothing
  end

  log 'pez deployed: checking it is ready' do
    message "pez: checking #{url}"
    notifies :run, 'execute[pez is ready]', :delayed
  end
end
