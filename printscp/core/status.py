"""DIMSE status codes used by printscp (PS3.7 Annex C, PS3.4 H.4), one table for all.

Each constant is documented with the standard's meaning; :data:`DESCRIPTIONS` is
the table the docs and the conformance statement are generated from.
"""

from __future__ import annotations

SUCCESS = 0x0000

# General failures (PS3.7 C.4)
NO_SUCH_ATTRIBUTE = 0x0105  #: Failure: the attribute is not supported for this operation
INVALID_ATTRIBUTE_VALUE = 0x0106  #: Failure: the attribute value is not allowed
PROCESSING_FAILURE = 0x0110  #: Failure: a general failure in processing the operation
DUPLICATE_SOP_INSTANCE = 0x0111  #: Failure: the new SOP Instance UID is already in use
NO_SUCH_SOP_INSTANCE = 0x0112  #: Failure: the SOP Instance is not known
NO_SUCH_SOP_CLASS = 0x0118  #: Failure: the SOP Class is not supported
CLASS_INSTANCE_CONFLICT = 0x0119  #: Failure: the instance does not belong to the class
MISSING_ATTRIBUTE = 0x0120  #: Failure: a required attribute is missing
MISSING_ATTRIBUTE_VALUE = 0x0121  #: Failure: a required attribute has no value
NO_SUCH_ACTION = 0x0123  #: Failure: the Action Type ID is not supported
NOT_AUTHORIZED = 0x0124  #: Refused: not authorized (PS3.7 9.1.1.1.9, 10.1.2-10.1.6)
RESOURCE_LIMITATION = 0x0213  #: Failure: the SCP lacks the resources (e.g. disk)
ATTRIBUTE_VALUE_OUT_OF_RANGE = 0x0116  #: Warning: a value was out of range and was replaced

# Print Management specific (PS3.4 H.4)
MEMORY_ALLOCATION_NOT_SUPPORTED = 0xB600  #: Warning: Memory Allocation is not supported
COLLATION_NOT_SUPPORTED = 0xB601  #: Warning: Film Session printing (collation) not supported
EMPTY_FILM_SESSION = 0xB602  #: Warning: Film Session hierarchy has no Image Box (empty page)
DENSITY_OUT_OF_RANGE = 0xB605  #: Warning: Min/Max Density outside the printer's range
EMPTY_FILM_BOX = 0xB603  #: Warning: Film Box hierarchy has no Image Box with an image (empty page)
IMAGE_CROPPED = 0xB609  #: Warning: image larger than its box, cropped to fit
IMAGE_DECIMATED = 0xB60A  #: Warning: image larger than its box, decimated to fit
NO_FILM_BOXES = 0xC600  #: Failure: Film Session hierarchy has no Film Box
PRINT_QUEUE_FULL = 0xC602  #: Failure: unable to create the Print Job; print queue is full
IMAGE_TOO_LARGE = 0xC603  #: Failure: image size is larger than the image box size
INSUFFICIENT_MEMORY = 0xC605  #: Failure: insufficient memory in printer to store the image
UNPRINTED_FILM_BOX = 0xC616  #: Failure: an unprinted Film Box exists and collation is off

# Storage and Query/Retrieve (PS3.4 B.2.3, C.4.1.1.4, C.4.2.1.5, K.4.1.1.4)
PENDING = 0xFF00  #: Pending: a C-FIND match, or a C-MOVE/C-GET sub-operation report
CANCEL = 0xFE00  #: Cancel: matching or sub-operations ended by C-CANCEL
SUB_OPERATIONS_FAILED = 0xB000  #: Warning: sub-operations complete, one or more failed
OUT_OF_RESOURCES = 0xA700  #: Refused: out of resources (the file or index cannot be written)
SUB_OPERATIONS_IMPOSSIBLE = 0xA702  #: Refused: unable to perform sub-operations (all failed)
MOVE_DESTINATION_UNKNOWN = 0xA801  #: Refused: move destination unknown
DOES_NOT_MATCH_SOP_CLASS = 0xA900  #: Error: data set or identifier does not match SOP Class
CANNOT_UNDERSTAND = 0xC000  #: Error: cannot understand / unable to process

DESCRIPTIONS: dict[int, tuple[str, str]] = {
    SUCCESS: ("Success", "Operation completed"),
    NO_SUCH_ATTRIBUTE: ("Failure", "No such attribute"),
    INVALID_ATTRIBUTE_VALUE: ("Failure", "Invalid attribute value"),
    PROCESSING_FAILURE: ("Failure", "Processing failure"),
    DUPLICATE_SOP_INSTANCE: ("Failure", "Duplicate SOP Instance"),
    NO_SUCH_SOP_INSTANCE: ("Failure", "No such SOP Instance"),
    NO_SUCH_SOP_CLASS: ("Failure", "No such SOP Class"),
    CLASS_INSTANCE_CONFLICT: ("Failure", "Class-instance conflict"),
    MISSING_ATTRIBUTE: ("Failure", "Missing attribute"),
    MISSING_ATTRIBUTE_VALUE: ("Failure", "Missing attribute value"),
    NO_SUCH_ACTION: ("Failure", "No such action type"),
    NOT_AUTHORIZED: ("Failure", "Refused: not authorized"),
    RESOURCE_LIMITATION: ("Failure", "Resource limitation"),
    ATTRIBUTE_VALUE_OUT_OF_RANGE: ("Warning", "Attribute value out of range"),
    MEMORY_ALLOCATION_NOT_SUPPORTED: ("Warning", "Memory allocation not supported"),
    COLLATION_NOT_SUPPORTED: ("Warning", "Film session printing (collation) is not supported"),
    EMPTY_FILM_SESSION: ("Warning", "Film Session SOP Instance hierarchy does not contain "
                         "Image Box SOP Instances (empty page)"),
    EMPTY_FILM_BOX: ("Warning", "Film Box SOP Instance hierarchy does not contain Image Box "
                     "SOP Instances (empty page)"),
    DENSITY_OUT_OF_RANGE: ("Warning", "Requested Min Density or Max Density outside of the "
                           "printer's operating range; the printer's default is used"),
    IMAGE_CROPPED: ("Warning", "Image size is larger than the image box size, the image has "
                    "been cropped to fit"),
    IMAGE_DECIMATED: ("Warning", "Image size is larger than the image box size, the image has "
                      "been decimated to fit"),
    NO_FILM_BOXES: ("Failure", "Film Session SOP Instance hierarchy does not contain Film Box "
                    "SOP Instances"),
    PRINT_QUEUE_FULL: ("Failure", "Unable to create Print Job SOP Instance; print queue is full"),
    IMAGE_TOO_LARGE: ("Failure", "Image size is larger than image box size"),
    INSUFFICIENT_MEMORY: ("Failure", "Insufficient memory in printer to store the image"),
    UNPRINTED_FILM_BOX: ("Failure", "There is an existing Film Box that has not been printed "
                         "and N-ACTION at the Film Session level is not supported"),
    PENDING: ("Pending", "Matches are continuing"),
    CANCEL: ("Cancel", "Matching or sub-operations terminated due to Cancel request"),
    SUB_OPERATIONS_FAILED: ("Warning", "Sub-operations complete, one or more failures"),
    OUT_OF_RESOURCES: ("Failure", "Refused: out of resources"),
    MOVE_DESTINATION_UNKNOWN: ("Failure", "Refused: move destination unknown"),
    DOES_NOT_MATCH_SOP_CLASS: ("Failure", "Data set or identifier does not match SOP Class"),
    CANNOT_UNDERSTAND: ("Failure", "Cannot understand / unable to process"),
}


def error_comment(text: str) -> str:
    """``text`` as an Error Comment (0000,0902): one LO value of at most 64 characters,
    so a backslash (which would split it: STANDARD\\2,2) becomes a slash."""
    return text.replace("\\", "/")[:64]
