# Plain Ruby, no Chef: the recipes call it, and tests/package-test.sh loads it
# with plain ruby to render the template the way a Chef run does.
module PezCookbook
  # What /etc/pez/pez.env holds, from node['pez']['env'].
  module EnvFile
    # Every PEZ_* setting, in the order of `pez --help`; the attribute of
    # PEZ_DB_HOST is node['pez']['env']['db_host'], and so on.
    SETTINGS = %w(
      listen data_dir max_count log block_size block_max lease_wait_ms
      store_timeout_ms shutdown_timeout_ms log_format max_connections
      header_timeout_ms idle_timeout_ms request_timeout_ms max_body_bytes sync_interval_ms max_lease
      admin_token tokens lease_tokens metrics_tokens database_url db_host db_port
      db_name db_username db_password db_sslmode db_sslrootcert db_pool_size
      db_timeout_ms db_startup_timeout_ms
    ).freeze

    # Values needing no quotes in both readers of the file: systemd's
    # EnvironmentFile= and a shell's `set -a; . /etc/pez/pez.env`.
    PLAIN = %r{\A[A-Za-z0-9_.,:/@%+=\-\[\]]*\z}

    # [[variable, line value or nil], ...] for the template: nil keeps the
    # variable commented out, so PEZ uses its built-in default. Raises
    # ArgumentError on an unknown attribute (a typo would otherwise be
    # silently ignored) or a value that cannot be written on one line.
    def self.settings(env, password = nil)
      env = (env || {}).to_hash
      unknown = env.keys.map(&:to_s) - SETTINGS
      unless unknown.empty?
        raise ArgumentError, "pez: unknown setting node['pez']['env']['#{unknown.first}'] " \
                             "(known: #{SETTINGS.join(', ')})"
      end
      SETTINGS.map do |key|
        value = key == 'db_password' && !password.nil? ? password : env[key]
        ["PEZ_#{key.upcase}", value.nil? ? nil : quote(key, value)]
      end
    end

    # A value as one line both readers take literally: bare when plain,
    # otherwise in double quotes with \ " $ ` escaped (systemd and sh both
    # undo exactly these escapes inside double quotes).
    def self.quote(key, value)
      text = value.to_s
      if text.include?("\n") || text.include?("\r") || text.include?("\0")
        raise ArgumentError, "pez: node['pez']['env']['#{key}'] must be one line"
      end
      return text if text.match?(PLAIN)

      '"' + text.gsub(/[\\"$`]/) { |c| "\\#{c}" } + '"'
    end

    # A token for the deploy check, or nil when taking numbers is open
    # (PEZ_TOKENS unset): the first of PEZ_TOKENS (a comma-separated list, or
    # @FILE, read with read_file), else PEZ_ADMIN_TOKEN, which may take
    # numbers too.
    def self.verify_token(env, read_file = ->(path) { File.read(path) })
      env = (env || {}).to_hash
      tokens = env['tokens'].to_s.strip
      return nil if tokens.empty?

      candidates = if tokens.start_with?('@')
                     begin
                       read_file.call(tokens[1..]).lines
                     rescue SystemCallError => e
                       raise ArgumentError, "pez: PEZ_TOKENS=#{tokens}: #{e.message}"
                     end
                   else
                     tokens.split(',')
                   end
      candidates.map(&:strip).reject(&:empty?).first || env['admin_token']
    end

    # TOKEN as the value of a curl config file line (header = "..."): the
    # check feeds the header to `curl -K -` on stdin, so the token never
    # appears in a process's arguments.
    def self.curl_config_header(token)
      "header = \"Authorization: Bearer #{token.to_s.gsub(/[\\"]/) { |c| "\\#{c}" }}\""
    end

    # The URL the deploy recipe checks with curl: PEZ_LISTEN's port on the
    # loopback address when PEZ listens on every interface.
    def self.verify_url(listen, path = '/readyz')
      listen = (listen.nil? || listen.to_s.empty?) ? '127.0.0.1:8000' : listen.to_s
      host, port = if listen.start_with?('[')
                     listen.match(/\A\[(.*)\]:(\d+)\z/)&.captures
                   else
                     listen.split(':', 2)
                   end
      raise ArgumentError, "pez: PEZ_LISTEN must be address:port, not #{listen.inspect}" if port.nil? || port !~ /\A\d+\z/

      host = case host
             when '0.0.0.0', '' then '127.0.0.1'
             when '::' then '::1'
             else host
             end
      host = "[#{host}]" if host.include?(':')
      "http://#{host}:#{port}#{path}"
    end
  end
end
