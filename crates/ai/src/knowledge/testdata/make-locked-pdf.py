"""Makes locked.pdf for the PDF extraction tests: a text PDF encrypted with a user password
(it cannot be opened, so its text cannot be read without the password).

    pip install fpdf2==2.8.9 && python3 crates/ai/src/knowledge/testdata/make-locked-pdf.py
"""

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import EncryptionMethod

pdf = FPDF()
pdf.set_creation_date(datetime(2025, 1, 6, tzinfo=timezone.utc))
pdf.set_encryption(owner_password="owner-secret", user_password="user-secret", encryption_method=EncryptionMethod.RC4)
pdf.add_page()
pdf.set_font("Helvetica", "", 12)
pdf.multi_cell(0, 6, "Confidential: the staff door code is 4711.")
out = Path(__file__).with_name("locked.pdf")
pdf.output(str(out))
print(f"wrote {out} ({out.stat().st_size} bytes)")
