"""The one Markdown table writer of the study's, the sweep's and the transfer
study's results."""

__all__ = ["markdown_table"]


def markdown_table(head, rows):
    """A Markdown table: the header cells ``head`` and each row's cells, as lines.

    Parameters
    ----------
    head : sequence of str
    rows : iterable of sequence
        Cells, written with ``str``; each row has as many as ``head``.

    Returns
    -------
    list of str
    """
    head = [str(cell) for cell in head]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for row in rows:
        row = [str(cell) for cell in row]
        if len(row) != len(head):
            raise ValueError(f"a row of {len(row)} cells under a header of {len(head)}: {row}")
        lines.append("| " + " | ".join(row) + " |")
    return lines
