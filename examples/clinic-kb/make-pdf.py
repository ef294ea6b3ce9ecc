"""Makes visitor-policy.pdf, the example clinic's one PDF document (a real PDF as an office
suite would write one: compressed content streams, a standard font, text wrapped into lines
and paragraphs, two pages, a title in the metadata).

    pip install fpdf2==2.8.9 && python3 examples/clinic-kb/make-pdf.py

The PDF is committed; this script only records how it was made. Its text is deliberately about
topics no other clinic document covers (interpreters, companions, animals, phones, masks), so
questions about them can only be answered from the PDF.
"""

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

TITLE = "Patient and visitor policy"

SECTIONS = [
    ("Interpreters",
     "Free professional interpreters are available in more than 40 languages, including Spanish, "
     "Mandarin, Arabic and American Sign Language. Please ask for an interpreter when you book, so "
     "that one can join your visit in person or by video. Family members may help, but we do not "
     "ask children to interpret for their parents."),
    ("Companions and children",
     "You are welcome to bring one adult companion into the examination room. Patients under 16 "
     "must be accompanied by a parent or legal guardian, who signs the consent form for any "
     "treatment."),
    ("Animals",
     "Only trained assistance dogs are allowed inside the clinic. Pets must stay outside, and we "
     "cannot look after them during your visit."),
    ("Phones and photography",
     "Please switch your mobile phone to silent in the waiting room. Taking photos or videos of "
     "other patients or of staff is not allowed anywhere in the building."),
    ("Face masks",
     "During the winter respiratory season, from November to March, patients with a cough or a "
     "fever are asked to wear a face mask, which reception provides free of charge."),
    ("Respect",
     "We do not tolerate abusive or threatening behaviour towards our staff or other patients. "
     "Anyone who is aggressive may be asked to leave and register with another practice."),
]


def main() -> None:
    pdf = FPDF(format="Letter")
    pdf.set_title(TITLE)
    pdf.set_author("Riverside Family Clinic")
    pdf.set_creation_date(datetime(2025, 1, 6, tzinfo=timezone.utc))  # the same bytes on every run
    pdf.set_margins(25, 25)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 10, TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for i, (heading, body) in enumerate(SECTIONS):
        if i == 4:
            pdf.add_page()  # two pages: text is read across a page break
        pdf.set_font("Helvetica", "B", 13)
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(0, 6, body, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    out = Path(__file__).with_name("visitor-policy.pdf")
    pdf.output(str(out))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
