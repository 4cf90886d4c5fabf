#!/usr/bin/env bash
# security.revocation_holder — revocation.sh with the second Hannover
# device's signing key BELOW the first one's.
#
# It found two holes, both fixed: the private:HAN key holder used to be "the
# device with the lowest signing key", so adding HAN2 moved the role to it
# and it made a rival epoch 1 (neither device could sync again); the holder
# is now the earliest enrolled device (client/keys.c is_holder).  And
# revoking the holder did not rotate private:HAN, since the new holder had
# not sent the keys itself; rotation now follows the count of revoked
# members that could have held the epoch (kz_key_basis).
SEC_HAN2_LOWER=1 SEC_NAME=revocation_holder exec bash "$(dirname "$0")/revocation.sh" "$@"
