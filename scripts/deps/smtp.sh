#!/usr/bin/env bash
# Sourced by test.sh (and by hand: `source scripts/deps/smtp.sh`). Installs Debian's postfix package when its
# smtp-sink is missing (with "No configuration", so no mail system is set up or started), runs smtp-sink on
# 127.0.0.1:55025 as Tessera's test SMTP server, writing every message it receives to a file of its own, and exports:
#   TESSERA_TEST_SMTP_HOST  127.0.0.1
#   TESSERA_TEST_SMTP_PORT  the port smtp-sink listens on
#   TESSERA_TEST_SMTP_DIR   where received mail lands: one file per message (envelope lines, then the message)
# Idempotent: when the sink already answers it only exports. Non-interactive. Does not change shell options.

tessera_smtp_setup() {
  local port=55025 root=/var/tmp/tessera-smtp
  local mail="$root/mail" sink=/usr/sbin/smtp-sink
  if [ ! -x "$sink" ]; then
    echo "smtp: installing Debian's postfix package (for smtp-sink)"
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
    apt-get update -qq </dev/null >/dev/null && apt-get install -y -qq postfix </dev/null >/dev/null || { echo "smtp: apt-get install postfix failed" >&2; return 1; }
  fi

  mkdir -p "$mail"
  # smtp-sink drops root privileges to this user after binding, so the user must be able to write the mail files.
  local user
  user=$(id -un)
  if [ "$(id -u)" = 0 ]; then user=nobody; chown nobody "$mail"; fi

  if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "smtp: starting smtp-sink on 127.0.0.1:$port, mail in $mail"
    # -d: one file per message, named from the template plus a random suffix; -c: count; 100: listen backlog.
    setsid "$sink" -u "$user" -d "$mail/%Y%m%d%H%M%S." 127.0.0.1:"$port" 100 </dev/null >"$root/smtp-sink.log" 2>&1 &
    local i
    for i in $(seq 1 50); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "smtp: smtp-sink did not start; see $root/smtp-sink.log" >&2; cat "$root/smtp-sink.log" >&2; return 1; }
  fi

  export TESSERA_TEST_SMTP_HOST=127.0.0.1
  export TESSERA_TEST_SMTP_PORT="$port"
  export TESSERA_TEST_SMTP_DIR="$mail"
}

tessera_smtp_setup
