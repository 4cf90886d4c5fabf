#!/usr/bin/env bash
# security.revocation_holder — KNOWN HOLE, registered only with
# -DKZ_SECURITY_KNOWN_HOLES=ON (it fails on the current code).
#
# revocation.sh with the second Hannover device's signing key BELOW the
# first one's.  The private:HAN key holder is "the non-revoked site device
# with the lowest signing key" (client/keys.c is_holder), so adding HAN2
# moves the holder role to it: HAN2 never receives HAN's private:HAN epoch 1
# (HAN is no longer the holder and owes nothing), makes a rival epoch 1 of
# its own, cannot open HAN's private:HAN changesets ("does not decrypt"),
# and HAN refuses HAN2's envelope ("a second, different key for an epoch
# already held") — from then on neither device can sync.  Half of all
# second devices hit this.  Were that fixed, revoking the holder would
# still not rotate private:HAN: the new holder rotates only if it had sent
# the newest epoch to the revoked device itself (sent_to_revoked).
SEC_HAN2_LOWER=1 SEC_NAME=revocation_holder exec bash "$(dirname "$0")/revocation.sh" "$@"
