#!/bin/sh
# Connection failures that waiting cannot heal because the server's certificate cannot be
# verified: the synth renders this function into the scripts whose contract includes this file.
# tls_failure <libpq's error>: prints the cause in words and returns 0 for such a failure,
# returns 1 for any other error.
tls_failure() {
  case $1 in
    *'certificate verify failed'*)
      printf '%s\n' "the server's certificate is not signed by the CA in ${PGSSLROOTCERT:-~/.postgresql/root.crt} (a wrong CA, or a server serving another certificate)" ;;
    *'does not match host name'*)
      printf '%s\n' "the server's certificate does not name the host ${PGHOST:-localhost} (it must list every name clients connect by)" ;;
    *'root certificate file'*'does not exist'*)
      printf '%s\n' "the CA file ${PGSSLROOTCERT:-~/.postgresql/root.crt} does not exist (sslmode=${PGSSLMODE:-prefer} verifies the server against it)" ;;
    *'server does not support SSL'*)
      printf '%s\n' "the server does not serve TLS, which sslmode=${PGSSLMODE:-prefer} requires" ;;
    *) return 1 ;;
  esac
}
