#!/bin/sh
# The knob rules of lib/script-contract.ts (KnobRule), in sh: the synth renders these functions
# into every script whose contract has a ruled knob. Each prints "<name>: '<value>' is not
# <what it must be>" and returns 1 when the value breaks the rule, exactly as knobProblem() words it.
check_whole() { # name value min max text
  case $2 in
    ''|0?*|*[!0-9]*) ;;
    *) [ ${#2} -le 10 ] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] && return 0 ;;
  esac
  printf "%s: %s: '%s' is not %s\n" "$PROG" "$1" "$2" "$5"
  return 1
}
check_duration() { # name value max_ms text
  _n=$2 _f=1
  case $_n in
    *ms) _n=${_n%ms} ;;
    *min) _n=${_n%min} _f=60000 ;;
    *s) _n=${_n%s} _f=1000 ;;
    *h) _n=${_n%h} _f=3600000 ;;
    *d) _n=${_n%d} _f=86400000 ;;
  esac
  case $_n in
    ''|0?*|*[!0-9]*) ;;
    *) [ ${#_n} -le 10 ] && [ $((_n * _f)) -le "$3" ] && return 0 ;;
  esac
  printf "%s: %s: '%s' is not %s\n" "$PROG" "$1" "$2" "$4"
  return 1
}
