"""The support staff's two-program query, the one place its text lives.

docs/compatibility-query.md shows both forms and tests/test_seed_query.py checks that the
page's blocks are exactly these constants; ``enrolldb doctor`` runs
:data:`TWO_PROGRAM_QUERY`. Why two forms: the verbatim query compared keys with ``=``,
which was case-insensitive under MySQL's default collations and is exact in PostgreSQL, so
on enrolldb it misses a learner spelled ``K1`` in one program and ``k1`` in the other.
"""

from __future__ import annotations

#: The query as scripts written against the Django schema run it (unchanged).
VERBATIM_TWO_PROGRAM_QUERY = """\
select distinct pe1.external_user_key
from program_enrollments_programcourseenrollment pce1
join program_enrollments_programenrollment pe1 on pe1.id=pce1.program_enrollment_id
join program_enrollments_programenrollment pe2 on pe1.external_user_key=pe2.external_user_key and pe1.program_uuid <> pe2.program_uuid
join program_enrollments_programcourseenrollment pce2 on pce2.program_enrollment_id=pe2.id
where pce1.course_key = pce2.course_key
"""  # noqa: E501

#: The same with keys compared as enrolldb compares them (``lower()`` on both sides): what
#: the verbatim query returned on MySQL. Each spelling of a learner's key is one row.
TWO_PROGRAM_QUERY = VERBATIM_TWO_PROGRAM_QUERY.replace(
    "pe1.external_user_key=pe2.external_user_key",
    "lower(pe1.external_user_key)=lower(pe2.external_user_key)",
)
