# Recovery targets and times, shared by restore.sh (database image) and offsite.sh (rclone's
# image, busybox): POSIX sh and awk only. A time is UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; its key
# is the 20 digits YYYYMMDDHHMMSSffffff, which sort as the times do.
time_key() { # time -> prints its key; returns 1 when it is not such a time
  _t=$1 _f=000000
  case $_t in
    [0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z) ;;
    [0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9].*Z)
      _f=${_t#*.} _f=${_f%Z} _t=${_t%%.*}Z
      case $_f in ''|*[!0-9]*) return 1 ;; esac
      [ ${#_f} -le 6 ] || return 1
      _f=$(printf '%s000000' "$_f" | cut -c1-6) ;;
    *) return 1 ;;
  esac
  _d=$(printf '%s' "$_t" | tr -d 'TZ:-')
  _m=${_d#????} _m=${_m%????????} _day=${_d#??????} _day=${_day%??????} _h=${_d#????????} _h=${_h%????}
  [ "$_m" -ge 1 ] && [ "$_m" -le 12 ] && [ "$_day" -ge 1 ] && [ "$_day" -le 31 ] && [ "$_h" -le 23 ] || return 1
  printf '%s%s\n' "$_d" "$_f"
}
now_key() { printf '%s000000\n' "$(date -u '+%Y%m%d%H%M%S')"; }
key_before() { # a b: true when key a sorts before key b
  awk -v a="$1" -v b="$2" 'BEGIN { exit !((a "") < (b "")) }'
}
# The rule of RESTORE_TARGET, in the words of its contract.
TARGET_RULE="'latest' or a UTC time YYYY-MM-DDTHH:MM:SS[.ffffff]Z, e.g. 2026-11-22T17:00:00Z"
