"""The codec: SMS, call-log and MMS records <-> RFC 5322 emails in the SMS Backup+ format.

Pure functions, no I/O. One module per concern: ``encoding`` (RFC 2047 words,
quoted-printable, RFC 2231, percent and base64), ``envelope`` (what every record
email shares, both ways), ``sms``, ``calls`` and ``mms``. Everything else in
smsbak imports from here, so the modules behind it can be rearranged freely.
"""

from smsbak.mime.calls import CALL_WORDS, call_body, decode_call, encode_call
from smsbak.mime.encoding import (
    decode_header_value,
    encode_words,
    header_text,
    qp_decode,
    qp_encode,
    strip_controls,
)
from smsbak.mime.envelope import (
    MESSAGE_ID_DOMAIN,
    SMS_BACKUP_PLUS_VERSION,
    UNKNOWN_DOMAIN,
    DecodeError,
    EncodedEmail,
    conversation_key,
    datatype_of,
    email_local_part,
    message_id_for,
    references_for,
)
from smsbak.mime.mms import (
    INSERT_ADDRESS_TOKEN,
    MMS_TYPE_RETRIEVE_CONF,
    MMS_TYPE_SEND_REQ,
    SMIL_TYPE,
    decode_addresses,
    decode_mms,
    encode_addresses,
    encode_mms,
    is_smil,
    mms_address,
    mms_message_id,
    mms_message_type,
    mms_participants,
    mms_references,
    without_smil,
)
from smsbak.mime.sms import decode_sms, encode_sms

__all__ = [
    "CALL_WORDS",
    "INSERT_ADDRESS_TOKEN",
    "MESSAGE_ID_DOMAIN",
    "MMS_TYPE_RETRIEVE_CONF",
    "MMS_TYPE_SEND_REQ",
    "SMIL_TYPE",
    "SMS_BACKUP_PLUS_VERSION",
    "UNKNOWN_DOMAIN",
    "DecodeError",
    "EncodedEmail",
    "call_body",
    "conversation_key",
    "datatype_of",
    "decode_addresses",
    "decode_call",
    "decode_header_value",
    "decode_mms",
    "decode_sms",
    "email_local_part",
    "encode_addresses",
    "encode_call",
    "encode_mms",
    "encode_sms",
    "encode_words",
    "header_text",
    "is_smil",
    "message_id_for",
    "mms_address",
    "mms_message_id",
    "mms_message_type",
    "mms_participants",
    "mms_references",
    "qp_decode",
    "qp_encode",
    "references_for",
    "strip_controls",
    "without_smil",
]
