"""Points over time as a step chart, painted with QPainter (QtCharts is not installed)."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop import theme
from desktop.units import local_time_text

_MARGIN_LEFT = 70
_MARGIN = 12
_MARGIN_BOTTOM = 28


class PointsChart(QWidget):
    """The balance after each ledger entry, in time order; a dot marks each entry."""

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._points: list[tuple[datetime, int]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(160)

    @property
    def points(self) -> list[tuple[datetime, int]]:
        return list(self._points)

    def set_points(self, points: list[tuple[datetime, int]]) -> None:
        ordered = sorted(points, key=lambda p: p[0])
        if ordered != self._points:
            self._points = ordered
            self.update()

    def sizeHint(self) -> QSize:
        return QSize(480, 240)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        plot = QRectF(
            _MARGIN_LEFT,
            _MARGIN,
            max(1, self.width() - _MARGIN_LEFT - _MARGIN),
            max(1, self.height() - _MARGIN - _MARGIN_BOTTOM),
        )
        painter.setPen(self.palette().text().color())
        if not self._points:
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "No ledger entries yet")
            return
        low = min(0, *(b for _, b in self._points))
        high = max(b for _, b in self._points)
        high = high if high > low else low + 1
        first, last = self._points[0][0], self._points[-1][0]
        span = (last - first).total_seconds() or 1.0

        def at(moment: datetime, balance: int) -> QPointF:
            x = plot.left() + plot.width() * (moment - first).total_seconds() / span
            if last == first:
                x = plot.center().x()
            y = plot.bottom() - plot.height() * (balance - low) / (high - low)
            return QPointF(x, y)

        self._draw_axes(painter, plot, low, high, first, last)
        path = QPainterPath(at(first, self._points[0][1]))
        previous = self._points[0][1]
        for moment, balance in self._points[1:]:
            path.lineTo(at(moment, previous))  # the balance holds until the next entry
            path.lineTo(at(moment, balance))
            previous = balance
        line = theme.color("chart_line")
        painter.setPen(QPen(line, 2))
        painter.drawPath(path)
        painter.setBrush(line)
        for moment, balance in self._points:
            painter.drawEllipse(at(moment, balance), 3, 3)

    def _draw_axes(
        self,
        painter: QPainter,
        plot: QRectF,
        low: int,
        high: int,
        first: datetime,
        last: datetime,
    ) -> None:
        text = self.palette().text().color()
        for fraction in (0.0, 0.5, 1.0):
            y = plot.bottom() - plot.height() * fraction
            painter.setPen(QPen(theme.color("chart_grid"), 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(text)
            label = f"{round(low + (high - low) * fraction):,}"
            box = QRectF(0, y - 10, _MARGIN_LEFT - 8, 20)
            painter.drawText(
                box, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label
            )
        below = QRectF(plot.left(), plot.bottom() + 4, plot.width(), _MARGIN_BOTTOM - 4)
        painter.drawText(below, Qt.AlignmentFlag.AlignLeft, local_time_text(first, seconds=False))
        if last != first:
            painter.drawText(
                below, Qt.AlignmentFlag.AlignRight, local_time_text(last, seconds=False)
            )
