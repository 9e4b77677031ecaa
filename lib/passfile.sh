#!/bin/sh
# libpq's password file, written from a Secret's key: the synth renders these functions into the
# scripts whose contract includes this file. The password never enters an environment variable
# or a command line (printf is the shell's own; sed reads it on stdin).
passfile_field() { # text: the text as one field of a password file, '\' and ':' escaped
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/:/\\:/g'
}
# write_passfile <password file> <passfile> <host> <port> <database> <user>: writes the password
# file for exactly that login, mode 0600 (libpq ignores one that others may read), from a file
# holding the password alone, its trailing line breaks dropped as the database image drops them.
# Prints why and returns 1 when it cannot: the file missing or empty, or a line break inside.
write_passfile() {
  if [ ! -r "$1" ]; then printf '%s\n' "cannot read the password file $1"; return 1; fi
  _pw=$(cat "$1") || return 1
  if [ -z "$_pw" ]; then printf '%s\n' "the password file $1 is empty"; return 1; fi
  case $_pw in *"
"*) printf '%s\n' "the password in $1 holds a line break, which a libpq password file cannot hold"; return 1 ;;
  esac
  (
    umask 077
    printf '%s:%s:%s:%s:%s\n' "$(passfile_field "$3")" "$(passfile_field "$4")" "$(passfile_field "$5")" \
      "$(passfile_field "$6")" "$(passfile_field "$_pw")" >"$2.new"
  ) && mv -f "$2.new" "$2"
  _status=$?
  _pw=''
  return "$_status"
}
